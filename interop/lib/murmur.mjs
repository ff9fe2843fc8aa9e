// Independent BigInt MurmurHash3_x64_128 (seed 0), written from the algorithm
// description, to cross-check @multiformats/murmur3. Returns [h1, h2] as BigInt.
const M = (1n << 64n) - 1n
const C1 = 0x87c37b91114253d5n
const C2 = 0x4cf5ad432745937fn
const rotl = (x, r) => ((x << BigInt(r)) | (x >> BigInt(64 - r))) & M
const fmix = (k) => {
  k ^= k >> 33n; k = (k * 0xff51afd7ed558ccdn) & M
  k ^= k >> 33n; k = (k * 0xc4ceb9fe1a85ec53n) & M
  k ^= k >> 33n
  return k
}
const le64 = (b, o, n) => { let v = 0n; for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[o + i]); return v }

export function murmur3x64_128 (data, seed = 0n) {
  let h1 = seed; let h2 = seed
  const nblocks = Math.floor(data.length / 16)
  for (let i = 0; i < nblocks; i++) {
    let k1 = le64(data, i * 16, 8); let k2 = le64(data, i * 16 + 8, 8)
    k1 = (k1 * C1) & M; k1 = rotl(k1, 31); k1 = (k1 * C2) & M; h1 ^= k1
    h1 = rotl(h1, 27); h1 = (h1 + h2) & M; h1 = (h1 * 5n + 0x52dce729n) & M
    k2 = (k2 * C2) & M; k2 = rotl(k2, 33); k2 = (k2 * C1) & M; h2 ^= k2
    h2 = rotl(h2, 31); h2 = (h2 + h1) & M; h2 = (h2 * 5n + 0x38495ab5n) & M
  }
  const tail = data.length & 15; const o = nblocks * 16
  if (tail > 8) {
    let k2 = le64(data, o + 8, tail - 8)
    k2 = (k2 * C2) & M; k2 = rotl(k2, 33); k2 = (k2 * C1) & M; h2 ^= k2
  }
  if (tail > 0) {
    let k1 = le64(data, o, Math.min(tail, 8))
    k1 = (k1 * C1) & M; k1 = rotl(k1, 31); k1 = (k1 * C2) & M; h1 ^= k1
  }
  const len = BigInt(data.length)
  h1 ^= len; h2 ^= len
  h1 = (h1 + h2) & M; h2 = (h2 + h1) & M
  h1 = fmix(h1); h2 = fmix(h2)
  h1 = (h1 + h2) & M; h2 = (h2 + h1) & M
  return [h1, h2]
}

// The UnixFS HAMT hash: h1, serialized big-endian (8 bytes).
export function hamtHash (data) {
  const [h1] = murmur3x64_128(data)
  return Buffer.from(h1.toString(16).padStart(16, '0'), 'hex')
}
