import { createHash } from 'node:crypto';
import t from 'tap';
import { emptyTreeHash, leafHash, MerkleTree, nodeHash } from './merkle.js';

/** MTH straight from the recursive definition of RFC 6962 §2.1. */
function merkleTreeHash(leaves: readonly Buffer[]): Buffer {
  if (leaves.length === 0) return emptyTreeHash;
  if (leaves.length === 1) return leafHash(leaves[0]);

  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(merkleTreeHash(leaves.slice(0, k)), merkleTreeHash(leaves.slice(k)));
}

// The eight leaves and roots of the reference Merkle tree test vectors published with
// Certificate Transparency's implementations.
const leaves = [
  '',
  '00',
  '10',
  '2021',
  '3031',
  '40414243',
  '5051525354555657',
  '606162636465666768696a6b6c6d6e6f',
].map((hex) => Buffer.from(hex, 'hex'));
const roots = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

t.test('hashes the empty tree as SHA-256 of nothing', async (t) => {
  t.equal(new MerkleTree().rootHash().toString('hex'), createHash('sha256').digest('hex'));
});

t.test('matches the reference roots for trees of one to eight leaves', async (t) => {
  const tree = new MerkleTree();
  leaves.forEach((leaf, i) => {
    tree.append(leaf);
    t.equal(tree.rootHash().toString('hex'), roots[i], `size ${i + 1}`);
  });
});

t.test('matches the recursive definition for every size up to 70', async (t) => {
  const tree = new MerkleTree();
  const all: Buffer[] = [];
  for (let n = 1; n <= 70; n++) {
    const leaf = Buffer.from(`leaf ${n}`);
    all.push(leaf);
    tree.append(leaf);
    if (!tree.rootHash().equals(merkleTreeHash(all))) t.fail(`size ${n} differs`);
  }
  t.equal(tree.size, 70);
});
