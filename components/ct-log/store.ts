import { mkdirSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from '../lib/log.js';
import { MerkleTree } from './merkle.js';

/**
 * The log's entries: one base64 MerkleTreeLeaf (RFC 6962 §3.4) per line of an append-only
 * file. The file, not this process, is the log: both colors' instances append to the same file
 * in shared state and read back what the other wrote before they answer, so they sign one tree.
 */

/** A leaf is at least version, leaf type, timestamp and entry type: 12 bytes. */
const minimumLeafBytes = 12;
/** How much of the file one catch-up reads at a time. */
const readChunkBytes = 1 << 20;

/** RFC 6962 §3.5: a tree's size and root, before signing. */
export interface TreeHead {
  readonly treeSize: number;
  readonly rootHash: Buffer;
}

/** The append-only entry file and the Merkle tree over what it holds. */
export class EntryStore {
  readonly #file: FileHandle;
  readonly #path: string;
  readonly #log: Logger;
  readonly #tree = new MerkleTree();
  /** Bytes of the file consumed so far, always just after a newline. */
  #offset = 0;
  /** Catch-ups run one at a time, so no byte is read twice. */
  #catchingUp: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(file: FileHandle, path: string, log: Logger) {
    this.#file = file;
    this.#path = path;
    this.#log = log;
  }

  /** Opens (or creates, mode 0600) the entry file and reads what it holds. */
  static async open(path: string, log: Logger): Promise<EntryStore> {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const store = new EntryStore(await open(path, 'a+', 0o600), path, log);
    await store.#catchUp();
    return store;
  }

  get open(): boolean {
    return !this.#closed;
  }

  /**
   * Appends a leaf and makes it durable before returning: the log has promised to include it
   * (RFC 6962 §3), so it must survive a crash. One write() on an O_APPEND file keeps lines
   * from two processes whole.
   */
  async append(leaf: Buffer): Promise<void> {
    await this.#file.write(`${leaf.toString('base64')}\n`);
    await this.#file.datasync();
  }

  /** The tree over every entry in the file now, whichever process wrote it. */
  async head(): Promise<TreeHead> {
    await this.#catchUp();
    return { treeSize: this.#tree.size, rootHash: this.#tree.rootHash() };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#catchingUp.catch(() => undefined);
    await this.#file.close();
  }

  #catchUp(): Promise<void> {
    const next = this.#catchingUp.then(() => this.#readNewLines());
    this.#catchingUp = next.catch(() => undefined);
    return next;
  }

  async #readNewLines(): Promise<void> {
    const { size } = await this.#file.stat();
    while (this.#offset < size) {
      const length = Math.min(readChunkBytes, size - this.#offset);
      const chunk = Buffer.alloc(length);
      const { bytesRead } = await this.#file.read(chunk, 0, length, this.#offset);

      // A line without its newline is still being written (or was torn by a crash): wait.
      const end = chunk.subarray(0, bytesRead).lastIndexOf(0x0a);
      if (end < 0) {
        if (length === readChunkBytes) throw new Error(`${this.#path}: a line over 1 MiB`);
        return;
      }

      for (const line of chunk.subarray(0, end).toString('latin1').split('\n')) {
        this.#addLine(line, this.#offset);
      }
      this.#offset += end + 1;
    }
  }

  #addLine(line: string, offset: number): void {
    const leaf = Buffer.from(line, 'base64');
    if (leaf.length < minimumLeafBytes || leaf.toString('base64') !== line) {
      // Limitation: a line torn by a crash is left out of the tree, so an SCT issued for it
      // is not honoured. See docs/limitations.md#ct-log-stub.
      this.#log.error({ file: this.#path, offset }, 'ct log entry unreadable; skipped');
      return;
    }
    this.#tree.append(leaf);
  }
}
