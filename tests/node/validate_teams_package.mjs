// Checks an unzipped Teams app package the way Microsoft's tooling does, offline:
//   node tests/node/validate_teams_package.mjs <folder with manifest.json and the icons>
// 1. The manifest against its $schema, with @microsoft/app-manifest's AppManifestUtils.validateAgainstSchema
//    and the copy of that schema bundled in the npm package (never fetched from the network).
// 2. The icons the manifest names: color a 192x192 PNG, outline a 32x32 PNG with an alpha channel and a
//    transparent background (read from the PNG signature, IHDR and pixels).
// Prints one JSON line {"schemaErrors": [...], "iconErrors": [...], "schema": "<file>"}; exits 1 on any error.
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { inflateSync } from "node:zlib";

const require = createRequire(import.meta.url);
const { AppManifestUtils } = require("@microsoft/app-manifest");

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const CHANNELS = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }; // by IHDR colour type

function chunks(png) {
  const found = [];
  for (let pos = 8; pos + 8 <= png.length; ) {
    const length = png.readUInt32BE(pos);
    found.push({ kind: png.toString("latin1", pos + 4, pos + 8), body: png.subarray(pos + 8, pos + 8 + length) });
    pos += 12 + length;
  }
  return found;
}

function paeth(a, b, c) {
  const p = a + b - c;
  const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** The alpha of every pixel of an 8-bit, non-interlaced PNG with alpha (colour type 4 or 6). */
function alphas(header, idat) {
  const bpp = CHANNELS[header.colorType];
  const stride = header.width * bpp;
  const raw = inflateSync(idat);
  let previous = Buffer.alloc(stride);
  const values = [];
  for (let y = 0; y < header.height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = Buffer.from(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)));
    for (let i = 0; i < stride; i++) {
      const left = i >= bpp ? line[i - bpp] : 0;
      const up = previous[i];
      const upLeft = i >= bpp ? previous[i - bpp] : 0;
      const predictor = [0, left, up, (left + up) >> 1, paeth(left, up, upLeft)][filter];
      line[i] = (line[i] + predictor) & 0xff;
    }
    for (let x = 0; x < header.width; x++) values.push(line[x * bpp + bpp - 1]);
    previous = line;
  }
  return values;
}

function checkIcon(folder, file, label, size, transparent) {
  if (typeof file !== "string" || !file) return [`icons.${label} is not set`];
  const where = path.join(folder, file);
  if (!existsSync(where)) return [`icons.${label}: ${file} is not in the package`];
  const png = readFileSync(where);
  if (!png.subarray(0, 8).equals(PNG_SIGNATURE)) return [`icons.${label}: ${file} is not a PNG`];
  const all = chunks(png);
  if (all[0]?.kind !== "IHDR") return [`icons.${label}: ${file} has no IHDR chunk first`];
  const ihdr = all[0].body;
  const header = {
    width: ihdr.readUInt32BE(0),
    height: ihdr.readUInt32BE(4),
    depth: ihdr[8],
    colorType: ihdr[9],
    interlace: ihdr[12],
  };
  const errors = [];
  if (header.width !== size || header.height !== size) {
    errors.push(`icons.${label}: ${file} is ${header.width}x${header.height}, not ${size}x${size}`);
  }
  if (transparent) {
    const hasAlpha = header.colorType === 4 || header.colorType === 6 || all.some((c) => c.kind === "tRNS");
    if (!hasAlpha) {
      errors.push(`icons.${label}: ${file} has no transparency (colour type ${header.colorType}, no tRNS)`);
    } else if (header.depth === 8 && header.interlace === 0 && (header.colorType === 4 || header.colorType === 6)) {
      const idat = Buffer.concat(all.filter((c) => c.kind === "IDAT").map((c) => c.body));
      const alpha = alphas(header, idat);
      if (alpha[0] !== 0) errors.push(`icons.${label}: ${file}'s background (top-left pixel) is not transparent`);
      if (!alpha.some((a) => a === 255)) errors.push(`icons.${label}: ${file} has no opaque pixel (an empty icon)`);
    }
  }
  return errors;
}

async function main() {
  const folder = process.argv[2];
  if (!folder) throw new Error("usage: validate_teams_package.mjs <unzipped package folder>");
  const manifest = JSON.parse(readFileSync(path.join(folder, "manifest.json"), "utf8"));
  const url = manifest.$schema;
  if (typeof url !== "string") throw new Error("manifest.json has no $schema");
  // The schema must come from the package itself: a network fetch would make the check depend on
  // developer.microsoft.com, and an unknown schema version would silently go online.
  const suffix = AppManifestUtils.getLocalSchemaSuffix(url);
  const bundled = suffix && path.join(path.dirname(require.resolve("@microsoft/app-manifest")), suffix);
  if (!bundled || !existsSync(bundled)) {
    throw new Error(`@microsoft/app-manifest bundles no schema for ${url}`);
  }
  const schema = await AppManifestUtils.fetchSchema(url); // reads the bundled file (checked above)
  const schemaErrors = await AppManifestUtils.validateAgainstSchema(manifest, schema);
  const icons = manifest.icons || {};
  const iconErrors = [
    ...checkIcon(folder, icons.color, "color", 192, false),
    ...checkIcon(folder, icons.outline, "outline", 32, true),
  ];
  const schemaFile = path.relative(process.cwd(), bundled);
  console.log(JSON.stringify({ schemaErrors, iconErrors, schema: schemaFile }));
  process.exitCode = schemaErrors.length || iconErrors.length ? 1 : 0;
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 2;
});
