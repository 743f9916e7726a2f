// What machine a result came from: CPU model, cores, memory, kernel, Node and V8.
import { readFileSync } from 'node:fs';
import os from 'node:os';

function cpuinfo() {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return '';
  }
}

export function machineInfo() {
  const info = cpuinfo();
  const field = (name) => info.match(new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm'))?.[1]?.trim();
  const cpus = os.cpus();
  const flags = field('flags') ?? '';
  return {
    cpu: field('model name') ?? cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    mhz: Number(field('cpu MHz')) || cpus[0]?.speed || null,
    virtualized: /\bhypervisor\b/.test(flags),
    memoryBytes: os.totalmem(),
    os: `${os.type()} ${os.release()}`,
    kernel: os.release(),
    arch: process.arch,
    node: process.version,
    v8: process.versions.v8,
  };
}

/** One line for the table's header and the chart's title. */
export function machineLine(m) {
  return `${m.cpu}, ${m.cores} cores${m.virtualized ? ' (VM)' : ''}, ${(m.memoryBytes / 2 ** 30).toFixed(0)} GiB, ` +
    `${m.os}, Node ${m.node}`;
}

/**
 * CPU time in clock ticks (USER_HZ, 100 on Linux): every CPU's busy time, and this
 * process's own (with its reaped children, i.e. the native run). Null off Linux.
 */
export function cpuSnapshot() {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = cpu[3] + (cpu[4] || 0);
    const busy = cpu.slice(0, 7).reduce((a, b) => a + b, 0) - idle; // user..softirq, not steal
    const self = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
    // after "pid (comm) ": state is field 3, utime 14, stime 15, cutime 16, cstime 17
    const own = [11, 12, 13, 14].reduce((a, i) => a + Number(self[i]), 0);
    return { busy, own, at: Date.now() };
  } catch {
    return null;
  }
}

/** CPUs' worth of time other processes used between two snapshots (0.5 = half a core). */
export function otherLoad(a, b) {
  if (!a || !b || b.at <= a.at) return null;
  const ticks = (b.busy - a.busy) - (b.own - a.own);
  return Math.max(0, ticks / 100 / ((b.at - a.at) / 1000));
}
