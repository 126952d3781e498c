// Copies the dashboard's front-end dependencies, with their licences, from
// node_modules into static/vendor, where go:embed takes them. Run by
// `make web-vendor` (npm ci && npm run vendor) after changing package.json.
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";

const out = new URL("./static/vendor/", import.meta.url);
mkdirSync(out, { recursive: true });
const files = [
  ["uplot/dist/uPlot.iife.min.js", "uPlot.iife.min.js"],
  ["uplot/dist/uPlot.min.css", "uPlot.min.css"],
  ["uplot/LICENSE", "uPlot.LICENSE"],
];
for (const [from, to] of files) {
  copyFileSync(new URL("./node_modules/" + from, import.meta.url), new URL(to, out));
}
const version = JSON.parse(readFileSync(new URL("./node_modules/uplot/package.json", import.meta.url))).version;
console.log(`vendored uPlot ${version} into static/vendor`);
