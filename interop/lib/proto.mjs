// Minimal protobuf reader: [{field, wire, value}] (varints as Number, bytes as Uint8Array).
export function protoFields (buf) {
  const out = []
  let i = 0
  const varint = () => { let v = 0; let m = 1; for (;;) { const b = buf[i++]; v += (b & 0x7f) * m; m *= 128; if (b < 128) return v } }
  while (i < buf.length) {
    const key = varint(); const field = Math.floor(key / 8); const wire = key & 7
    if (wire === 0) out.push({ field, wire, value: varint() })
    else if (wire === 2) { const n = varint(); out.push({ field, wire, value: buf.subarray(i, i + n) }); i += n } else if (wire === 5) { out.push({ field, wire, value: Buffer.from(buf.subarray(i, i + 4)).readUInt32LE() }); i += 4 } else if (wire === 1) { out.push({ field, wire, value: buf.subarray(i, i + 8) }); i += 8 } else throw new Error(`wire type ${wire}`)
  }
  return out
}
