// CI's QEMU check (.ci/run → scripts/kernels/record.mjs --check) must survive Debian replacing
// the pinned kernel build (issue 15): seriesCandidates turns apt's answers into the other
// builds of the same major.minor, newest first. Pure parsing; version order comes from dpkg.
import { describe, expect, it } from 'vitest';
import { KERNELS, debVersionCompare, seriesCandidates } from '../../scripts/kernels/kernels.mjs';

type Cand = { abi: string; debs: string[] };
const k612 = KERNELS.find((k: { name: string }) => k.name === '6.12-amd64');
const k73 = KERNELS.find((k: { name: string }) => k.name === '7.3-amd64');

const search = (names: string[]) => names.map((n) => `${n} - Linux for 64-bit PCs`).join('\n') + '\n';
const madisonOf = (table: Record<string, string[]>) => (name: string) =>
  (table[name] ?? []).map((v) => `${name} | ${v} | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages`).join('\n');

describe('kernel fallback for the CI check (scripts/kernels/kernels.mjs)', () => {
  it('orders Debian versions and kernel ABIs as dpkg does', () => {
    expect(debVersionCompare('6.12.117+deb12', '6.12.118+deb12')).toBe(-1);
    expect(debVersionCompare('6.12.120+deb12', '6.12.118+deb12')).toBe(1);
    expect(debVersionCompare('6.1.0-9', '6.1.0-57')).toBe(-1);
    expect(debVersionCompare('6.12.118-2~deb12u1', '6.12.118-1~deb12u1')).toBe(1);
  });

  it('offers the other 6.12 builds newest first, each at its newest version, and never another series or flavour', () => {
    const names = [
      'linux-image-6.12.107+deb12-amd64-unsigned', 'linux-image-6.12.120+deb12-amd64-unsigned',
      'linux-image-6.12.118+deb12-amd64-unsigned', 'linux-image-6.12.117+deb12-cloud-amd64-unsigned',
      'linux-image-6.13.2+deb12-amd64-unsigned',
    ];
    const madison = madisonOf({
      'linux-image-6.12.107+deb12-amd64-unsigned': ['6.12.107-1~deb12u1'],
      'linux-image-6.12.120+deb12-amd64-unsigned': ['6.12.120-1~deb12u1', '6.12.120-3~deb12u1', '6.12.120-2~deb12u1'],
      'linux-image-6.12.118+deb12-amd64-unsigned': ['6.12.118-1~deb12u1'],
    });
    const c: Cand[] = [...seriesCandidates(k612, search(names), madison)];
    expect(c).toEqual([
      { abi: '6.12.120+deb12', debs: ['linux-image-6.12.120+deb12-amd64-unsigned=6.12.120-3~deb12u1'] },
      { abi: '6.12.107+deb12', debs: ['linux-image-6.12.107+deb12-amd64-unsigned=6.12.107-1~deb12u1'] },
    ]);
  });

  it('offers the pinned build again only when Debian re-uploaded it under a new version', () => {
    const names = ['linux-image-6.12.118+deb12-amd64-unsigned'];
    const reup = madisonOf({ 'linux-image-6.12.118+deb12-amd64-unsigned': ['6.12.118-2~deb12u1'] });
    expect([...seriesCandidates(k612, search(names), reup)]).toEqual([
      { abi: '6.12.118+deb12', debs: ['linux-image-6.12.118+deb12-amd64-unsigned=6.12.118-2~deb12u1'] },
    ]);
  });

  it('needs every package of a split 7.x kernel (binary + modules) at the same build', () => {
    const names = ['linux-binary-7.3.6+deb13-amd64', 'linux-binary-7.3.5+deb13-amd64'];
    const madison = madisonOf({
      'linux-binary-7.3.6+deb13-amd64': ['7.3.6-1~bpo13+1'],
      'linux-binary-7.3.5+deb13-amd64': ['7.3.5-1~bpo13+1'],
      'linux-modules-7.3.5+deb13-amd64': ['7.3.5-1~bpo13+1'],
    });
    expect([...seriesCandidates(k73, search(names), madison)]).toEqual([
      { abi: '7.3.5+deb13', debs: ['linux-binary-7.3.5+deb13-amd64=7.3.5-1~bpo13+1', 'linux-modules-7.3.5+deb13-amd64=7.3.5-1~bpo13+1'] },
    ]);
  });
});
