// wasm-mmu/node: backends that need Node's file system. Kept out of the package's main
// entry so the browser build never sees a node: import.
import { openSync, readSync, writeSync, ftruncateSync, fstatSync, closeSync } from 'node:fs';
import type { Backend } from './file.js';
import { PAGE_SIZE } from './constants.js';
import { LinuxError } from './errors.js';

export interface NodeFileOptions {
  /** Open read-only (O_RDONLY): writePage and truncate refuse with EBADF. Map it with
   *  `mmu.openFile(file)`, which then refuses shared writable mappings (EACCES, R9.5). */
  readOnly?: boolean;
  /** Create the file (empty) if it does not exist. Default false. */
  create?: boolean;
}

/**
 * A real file as a backend, through node:fs with positional reads and writes: i_size is
 * fstat's size (asked again when the file may have changed outside: another process may
 * truncate or extend it while it is mapped — see Backend in file.ts), a page is read with
 * one 4 KiB pread at index × 4096 (short at EOF, the core zero-fills the rest), a
 * read-around window with one pread of each absent run (readPages), and dirty shared pages
 * are written back with a positional write of the bytes up to EOF — on msync, fsync
 * (File.sync) and when a dirty page is evicted or the File closed. Private (MAP_PRIVATE)
 * writes never reach it: they go to anonymous
 * copies (R5.1).
 */
/** pread until `len` bytes are in `dst` or EOF: the bytes read. */
function preadFull(fd: number, dst: Uint8Array, len: number, pos: number): number {
  let done = 0;
  while (done < len) {
    const n = readSync(fd, dst, done, len - done, pos + done);
    if (n === 0) break; // EOF
    done += n;
  }
  return done;
}

export class NodeFile implements Backend {
  readonly path: string;
  readonly readOnly: boolean;
  /** Pages read and written back so far (for tests and teaching). */
  reads = 0;
  writes = 0;
  private fd: number | null;

  constructor(path: string, opts: NodeFileOptions = {}) {
    if (typeof path !== 'string' || path.length === 0) throw new RangeError('NodeFile needs a file path');
    this.path = path;
    this.readOnly = opts.readOnly === true;
    const flags = this.readOnly ? 'r' : opts.create ? 'a+' : 'r+';
    // 'a+' would append on every write: open it once to create, then reopen read-write.
    if (flags === 'a+') closeSync(openSync(path, 'a+'));
    this.fd = openSync(path, this.readOnly ? 'r' : 'r+');
  }

  private handle(op: string): number {
    if (this.fd === null) throw new LinuxError(9, op, `${this.path} is closed`);
    return this.fd;
  }

  /** The file's size in bytes (fstat). */
  size(): number {
    return fstatSync(this.handle('fstat')).size;
  }

  /** pread of page `index` into `dst` (4096 bytes): the bytes read, fewer at EOF. */
  readPage(index: number, dst: Uint8Array): number {
    const fd = this.handle('read');
    const len = Math.min(dst.length, PAGE_SIZE);
    const pos = index * PAGE_SIZE;
    const done = preadFull(fd, dst, len, pos);
    this.reads++;
    return done;
  }

  /** pread of pages [index, index + count) into `dst` (count × 4096 bytes) in one call (the
   *  read-around window): the bytes read, fewer at EOF. */
  readPages(index: number, count: number, dst: Uint8Array): number {
    const fd = this.handle('read');
    const len = Math.min(dst.length, count * PAGE_SIZE);
    const pos = index * PAGE_SIZE;
    const done = preadFull(fd, dst, len, pos);
    this.reads += Math.ceil(done / PAGE_SIZE);
    return done;
  }

  /** pwrite of a dirty page (its bytes up to EOF) at index × 4096. */
  writePage(index: number, src: Uint8Array): void {
    if (this.readOnly) throw new LinuxError(9, 'write', `${this.path} was opened read-only`);
    const fd = this.handle('write');
    const pos = index * PAGE_SIZE;
    let done = 0;
    while (done < src.length) done += writeSync(fd, src, done, src.length - done, pos + done);
    this.writes++;
  }

  /** ftruncate: File.truncate() calls this before the page cache follows (R10.2). */
  truncate(size: number): void {
    if (this.readOnly) throw new LinuxError(9, 'ftruncate', `${this.path} was opened read-only`);
    ftruncateSync(this.handle('ftruncate'), size);
  }

  /**
   * Punch a hole: Node has no fallocate(2), so the range (clamped to the file's size, which
   * stays) is overwritten with zeros. Reads then return zeros exactly as after a real
   * FALLOC_FL_PUNCH_HOLE; unlike it, the disk blocks stay allocated (the file is not sparse).
   */
  punchHole(offset: number, length: number): void {
    if (this.readOnly) throw new LinuxError(9, 'fallocate', `${this.path} was opened read-only`);
    const fd = this.handle('fallocate');
    const end = Math.min(offset + length, this.size());
    const zeros = new Uint8Array(Math.min(1 << 20, Math.max(0, end - offset)));
    for (let pos = offset; pos < end;) pos += writeSync(fd, zeros, 0, Math.min(zeros.length, end - pos), pos);
  }

  /** Close the descriptor. Close the File that uses it first (that writes dirty pages back). */
  close(): void {
    if (this.fd === null) return;
    closeSync(this.fd);
    this.fd = null;
  }

  get closed(): boolean { return this.fd === null; }
}
