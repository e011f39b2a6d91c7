import { createHash } from 'node:crypto';

/**
 * The Merkle Tree Hash of RFC 6962 §2.1, kept incrementally: the roots of the perfect subtrees
 * that make up the tree, largest first, like the digits of the tree size in binary. Appending
 * is O(log n) and so is the root, so get-sth stays cheap however large the log grows.
 */

const sha256 = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();

/** RFC 6962 §2.1: MTH({d}) = SHA-256(0x00 || d). */
export function leafHash(leaf: Buffer): Buffer {
  return sha256(Buffer.from([0x00]), leaf);
}

/** RFC 6962 §2.1: an interior node is SHA-256(0x01 || left || right). */
export function nodeHash(left: Buffer, right: Buffer): Buffer {
  return sha256(Buffer.from([0x01]), left, right);
}

/** The hash of the empty tree: SHA-256 of nothing. */
export const emptyTreeHash = sha256();

/** An append-only Merkle tree that keeps only what the next root needs. */
export class MerkleTree {
  #size = 0;
  /** Perfect subtrees, largest (leftmost) first. */
  readonly #subtrees: { size: number; hash: Buffer }[] = [];

  get size(): number {
    return this.#size;
  }

  /** Adds one leaf (the MerkleTreeLeaf bytes, not yet hashed). */
  append(leaf: Buffer): void {
    let node = { size: 1, hash: leafHash(leaf) };
    // Two perfect subtrees of one size merge into the next, as a binary carry.
    for (;;) {
      const last = this.#subtrees[this.#subtrees.length - 1];
      if (!last || last.size !== node.size) break;
      this.#subtrees.pop();
      node = { size: last.size * 2, hash: nodeHash(last.hash, node.hash) };
    }
    this.#subtrees.push(node);
    this.#size++;
  }

  /**
   * MTH(D[n]). RFC 6962 splits at the largest power of two below n, so the root folds the
   * perfect subtrees from the right: node(P0, node(P1, … node(Pk-1, Pk))).
   */
  rootHash(): Buffer {
    if (this.#subtrees.length === 0) return emptyTreeHash;

    let hash = this.#subtrees[this.#subtrees.length - 1].hash;
    for (let i = this.#subtrees.length - 2; i >= 0; i--) {
      hash = nodeHash(this.#subtrees[i].hash, hash);
    }
    return hash;
  }
}
