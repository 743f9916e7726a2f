// node examples/interpreter/run.mjs [sieveBytes slots keys]   (after npm run build)
// Runs the guest program on a plain Uint8Array and on a wasm-mmu address space and prints
// both outputs and times. The bench (npm run bench) runs each in its own worker instead, so
// that the JIT sees one memory kind per interpreter.
import { createMmu } from '../../dist/index.js';
import { Rv32 } from './rv32.mjs';
import { assembleProgram, referenceOutput, DEFAULTS, CODE_BASE } from './program.mjs';
import { plainMachine, loadIntoAddressSpace, startRegisters } from './memory.mjs';

const [s, sl, k] = process.argv.slice(2).map(Number);
const params = { sieveBytes: s || DEFAULTS.sieveBytes, slots: sl || DEFAULTS.slots, keys: k || DEFAULTS.keys };
const program = assembleProgram();

function time(label, mem) {
  const cpu = new Rv32(mem);
  startRegisters(cpu, params);
  const t = performance.now();
  const code = cpu.run(CODE_BASE);
  const ms = performance.now() - t;
  console.log(`${label.padEnd(8)} exit ${code} output ${cpu.out.join(' ')}  ${cpu.steps} instructions, ${ms.toFixed(0)} ms, ${(ms * 1e6 / cpu.steps).toFixed(2)} ns/instruction`);
  return cpu.out;
}

const mmu = await createMmu({ ramBytes: 64 << 20, tlbEntries: 4096 });
const mm = loadIntoAddressSpace(mmu.createAddressSpace(), program, params);
const a = time('plain', plainMachine(program, params));
const b = time('wasm-mmu', mm);
const ref = referenceOutput(params);
console.log(`reference output ${ref.join(' ')}: ${JSON.stringify(a) === JSON.stringify(ref) && JSON.stringify(b) === JSON.stringify(ref) ? 'both match' : 'MISMATCH'}`);
console.log(`wasm-mmu: ${mm.rusage().minflt} minor faults, ${mmu.stats().tlbMisses} TLB misses (hits in JS are not counted)`);
