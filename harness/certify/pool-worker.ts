/** A piscina worker: runs one check of the catalogue per task. */
import { executeCheck, type ExecutedCheck } from './execute.js'
import { catalogue, type CheckTask } from './runner.js'

export default async function runTask(task: CheckTask): Promise<ExecutedCheck> {
  const def = (await catalogue()).find(d => d.id === task.id)
  if (def === undefined) throw new Error(`unknown check ${task.id}`)
  return executeCheck(def, task.subject, task.options)
}
