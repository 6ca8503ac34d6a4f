/**
 * Getting a package from its URL onto a host: a local path or `file://` is read where it is
 * (openPackage copies it); `http(s)://` is downloaded into the host's download directory with a
 * bounded time and size. Every failure is `CannotAccessAgentVib { downloadUrl }`: what arrives
 * is judged afterwards by openPackage and verifyPackage.
 */
import { createWriteStream, type WriteStream } from 'node:fs'
import { rm, stat } from 'node:fs/promises'
import * as http from 'node:http'
import * as https from 'node:https'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CannotAccessAgentVib, UnsupportedUrl } from './issues.js'

/** Where a package comes from, as the lifecycle records it. */
export type PackageUrl =
  | { readonly kind: 'path'; readonly url: string; readonly path: string }
  | { readonly kind: 'http'; readonly url: string }

/** Options of fetchPackage. */
export interface FetchOptions {
  /** The whole download, from request to last byte, must finish within this. */
  readonly timeoutMs: number
  /** A response larger than this is refused (a hostile server cannot fill the disk). */
  readonly maxBytes: number
}

const MAX_REDIRECTS = 5

/**
 * Classifies a package URL. A local path is made absolute, so the record still names the same
 * package when a later command runs from another directory. Throws UnsupportedUrl (bad input)
 * for other schemes.
 */
export function parsePackageUrl(url: string): PackageUrl {
  if (/^https?:\/\//i.test(url)) return { kind: 'http', url }
  if (/^file:/i.test(url)) {
    let path: string
    try {
      path = fileURLToPath(url)
    } catch {
      throw UnsupportedUrl({ url })
    }
    return { kind: 'path', url, path }
  }
  // one letter before ':' is a Windows drive, not a scheme
  if (/^[a-z][a-z0-9+.-]+:/i.test(url)) throw UnsupportedUrl({ url })
  const path = resolve(url)
  return { kind: 'path', url: path, path }
}

/**
 * Makes the package reachable as a local file or directory for openPackage: returns the local
 * path, or downloads into `dir/package.tgz` and returns that.
 */
export async function fetchPackage(source: PackageUrl, dir: string, options: FetchOptions): Promise<string> {
  if (source.kind === 'path') {
    try {
      await stat(source.path)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      throw CannotAccessAgentVib({ downloadUrl: source.url, reason: code === 'ENOENT' ? 'no such file or directory' : (err as Error).message }, err)
    }
    return source.path
  }
  const file = join(dir, 'package.tgz')
  try {
    await download(source.url, file, options)
  } catch (err) {
    await rm(file, { force: true })
    throw CannotAccessAgentVib({ downloadUrl: source.url, reason: (err as Error).message }, err)
  }
  return file
}

/** GETs `url` into `file`, following a few redirects, within the time and size bounds. */
function download(url: string, file: string, options: FetchOptions): Promise<void> {
  return new Promise<void>((resolveDownload, reject) => {
    let settled = false
    let current: http.ClientRequest | null = null
    let sink: WriteStream | null = null
    const finish = (err?: Error) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (err === undefined) resolveDownload()
      else {
        current?.destroy()
        sink?.destroy()
        reject(err)
      }
    }
    // one deadline for the whole transfer: a server that trickles bytes cannot keep us forever
    const timer = setTimeout(() => finish(new Error(`the download did not finish within ${options.timeoutMs} ms`)), options.timeoutMs)

    const get = (target: string, redirects: number) => {
      let parsed: URL
      try {
        parsed = new URL(target)
      } catch {
        finish(new Error(`"${target}" is not a valid URL`))
        return
      }
      const client = parsed.protocol === 'https:' ? https : parsed.protocol === 'http:' ? http : null
      if (client === null) {
        finish(new Error(`redirected to unsupported URL ${target}`))
        return
      }
      // no keep-alive: a pooled socket would keep a one-shot command's process alive after it is done
      const req = client.get(parsed, { agent: false }, res => {
        const status = res.statusCode ?? 0
        if (status >= 300 && status < 400 && res.headers.location !== undefined) {
          res.resume()
          if (redirects >= MAX_REDIRECTS) finish(new Error(`more than ${MAX_REDIRECTS} redirects`))
          else get(new URL(res.headers.location, parsed).href, redirects + 1)
          return
        }
        if (status !== 200) {
          res.resume()
          finish(new Error(`HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}`))
          return
        }
        const declared = res.headers['content-length'] === undefined ? null : Number(res.headers['content-length'])
        if (declared !== null && declared > options.maxBytes) {
          res.resume()
          finish(new Error(`the package is ${declared} bytes, more than the ${options.maxBytes} allowed`))
          return
        }
        let received = 0
        const out = createWriteStream(file)
        sink = out
        out.on('error', err => finish(err))
        res.on('data', (chunk: Buffer) => {
          received += chunk.length
          if (received > options.maxBytes) finish(new Error(`the package is larger than the ${options.maxBytes} bytes allowed`))
        })
        res.on('error', err => finish(new Error(`the download broke off after ${received} bytes (${err.message})`)))
        res.on('aborted', () => finish(new Error(`the download broke off after ${received}${declared === null ? '' : ` of ${declared}`} bytes`)))
        res.pipe(out)
        out.on('finish', () => {
          // a connection closed early still ends the stream: only the byte count tells
          if (!res.complete || (declared !== null && received !== declared)) {
            finish(new Error(`the download is truncated: ${received}${declared === null ? '' : ` of ${declared}`} bytes arrived`))
          } else finish()
        })
      })
      current = req
      req.on('error', err => finish(new Error(err.message === '' ? String((err as NodeJS.ErrnoException).code) : err.message)))
    }
    get(url, 0)
  })
}
