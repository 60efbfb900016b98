// Compiles a directory's modules with CPython for the Lambda runtime (Pyodide's build of it, run here by
// Node): node compile_bytecode.mjs <directory> <its path on Lambda>. Driven by infra/bytecode.py, which
// checks the result; prints one JSON line: the compiler's version, bytecode magic and cache tag.
import { loadPyodide } from "pyodide";

const [directory, runtimePath] = process.argv.slice(2);
const pyodide = await loadPyodide();
pyodide.FS.mkdirTree("/project");
pyodide.FS.mount(pyodide.FS.filesystems.NODEFS, { root: directory }, "/project");
pyodide.globals.set("runtime_path", runtimePath);
const report = pyodide.runPython(`
import compileall, importlib.util, json, py_compile, sys

# checked-hash (PEP 552): valid whatever the zip does to timestamps, recompiled if the source changed
ok = compileall.compile_dir(
    "/project", ddir=runtime_path, quiet=1, workers=1,
    invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
)
json.dumps({"ok": bool(ok), "version": sys.version, "magic": importlib.util.MAGIC_NUMBER.hex(),
            "cache_tag": sys.implementation.cache_tag})
`);
console.log(report);
process.exit(JSON.parse(report).ok ? 0 : 1);
