// dist/esm holds ES modules and dist/cjs CommonJS ones, both as .js files: a package.json in
// each folder tells Node (and bundlers) which is which, whatever the root package says.
import { writeFileSync } from "node:fs";

for (const [dir, type] of [["esm", "module"], ["cjs", "commonjs"]]) {
  writeFileSync(new URL(`../dist/${dir}/package.json`, import.meta.url), `{"type": "${type}"}\n`);
}
