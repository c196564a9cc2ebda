// Reads arrays of a Zarr v3 store with zarrita (an independent implementation, from npm) and
// writes each one's raw values (C order, little-endian) to OUT/NAME.bin, printing their shapes
// and types as JSON. Usage: node zarrita_read.mjs TOOLS_NODE_MODULES STORE OUT NAME...
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [modules, store, out, ...names] = process.argv.slice(2);
const zarr = await import(pathToFileURL(join(modules, "zarrita/dist/src/index.js")));
const { default: FileSystemStore } = await import(pathToFileURL(join(modules, "@zarrita/storage/dist/src/fs.js")));

const root = zarr.root(new FileSystemStore(store));
const group = await zarr.open.v3(root, { kind: "group" });
const report = { group_attrs: group.attrs, arrays: {} };
for (const name of names) {
  const arr = await zarr.open.v3(root.resolve(name), { kind: "array" });
  const chunk = await zarr.get(arr);
  const data = chunk.data;
  writeFileSync(join(out, name + ".bin"), Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  report.arrays[name] = { shape: chunk.shape, dtype: arr.dtype, attrs: arr.attrs, fill_value: arr.fillValue === undefined ? null : String(arr.fillValue) };
}
console.log(JSON.stringify(report));
