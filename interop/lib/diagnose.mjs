// On a CID mismatch: fetch kiln's DAG through `kiln dag export`, decode both
// roots with @ipld/dag-pb and describe the first difference.
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import { describeBlock, getBlock } from './js.mjs'
import { readAndVerifyCar } from './car.mjs'

export async function diagnose (kiln, kilnCid, jsCid, jsBs) {
  const lines = [`kiln ${kilnCid}`, `js   ${jsCid}`]
  let kbs
  try {
    const r = kiln.run(['dag', 'export', kilnCid])
    if (r.status !== 0) throw new Error(r.stderr.trim())
    kbs = (await readAndVerifyCar(r.stdout)).bs
  } catch (e) {
    lines.push(`(could not export kiln's DAG: ${e.message})`)
  }
  const kget = (cid) => { try { return getBlock(kbs, cid) } catch { return undefined } }
  let k = CID.parse(kilnCid); let j = CID.parse(jsCid)
  for (let depth = 0; depth < 6; depth++) {
    const jb = getBlock(jsBs, j)
    const kb = kbs && kget(k)
    lines.push(`depth ${depth} js:   ${describeBlock(jb, j)}`)
    lines.push(`depth ${depth} kiln: ${kb ? describeBlock(kb, k) : '(block unavailable)'}`)
    if (!kb || k.code !== dagPb.code || j.code !== dagPb.code) break
    const kl = dagPb.decode(kb).Links; const jl = dagPb.decode(jb).Links
    if (kl.length !== jl.length) { lines.push(`link count differs: kiln ${kl.length} js ${jl.length}`) }
    const i = jl.findIndex((l, i) => !kl[i] || kl[i].Name !== l.Name || !kl[i].Hash.equals(l.Hash) || kl[i].Tsize !== l.Tsize)
    if (i < 0) { lines.push('links identical: the difference is in Data (or field order / encoding)'); lines.push(`js   block hex: ${Buffer.from(jb).toString('hex').slice(0, 400)}`); lines.push(`kiln block hex: ${Buffer.from(kb).toString('hex').slice(0, 400)}`); break }
    const a = jl[i]; const b = kl[i]
    lines.push(`first differing link #${i}: js {name:${JSON.stringify(a.Name)}, tsize:${a.Tsize}, ${a.Hash}} kiln ${b ? `{name:${JSON.stringify(b.Name)}, tsize:${b.Tsize}, ${b.Hash}}` : '(missing)'}`)
    if (!b || b.Hash.equals(a.Hash)) break
    j = a.Hash; k = b.Hash
  }
  return lines.join('\n')
}
