// Guest page hinting (R12, seed 003): the host's view of each RAM frame.
//
// The residency a hypervisor gives a frame lives here, one byte per frame, because the
// hardware walk must see it: a discarded frame is not there any more, and touching it
// raises a discard fault (s390's, here an extra #PF error bit) instead of reading zeros.
// The guest's usage state (stable, unused, volatile, potentially volatile) is a pure
// function of the page's condition (R12.2) and is computed where it is asked (hinting.ts).

export const RES_RESIDENT: u8 = 0;
export const RES_PRESERVED: u8 = 1; // the host swapped the content out; it comes back on access
export const RES_DISCARDED: u8 = 2; // logically zero: the guest must recreate the content

let residency: usize = 0;
let frames: u32 = 0;
// How many frames are not RES_RESIDENT: a bulk access (uaccess.ts run_walk, issue 17) skips
// each frame's residency byte while there are none.
let notResident: u32 = 0;

export function pagestate_init(nr: u32): void {
  frames = nr;
  residency = heap.alloc(<usize>nr);
  memory.fill(residency, 0, <usize>nr);
  notResident = 0;
}

@inline export function page_residency(pfn: u32): u8 {
  return pfn < frames ? load<u8>(residency + <usize>pfn) : RES_RESIDENT;
}
@inline export function set_page_residency(pfn: u32, r: u8): void {
  if (r == RES_RESIDENT && notResident == 0) return; // every frame is resident already
  if (pfn >= frames) return;
  const a = residency + <usize>pfn;
  const old = load<u8>(a);
  if (old == r) return;
  if (old == RES_RESIDENT) notResident++;
  else if (r == RES_RESIDENT) notResident--;
  store<u8>(a, r);
}
// No frame is preserved or discarded: every frame's residency is RES_RESIDENT.
@inline export function all_frames_resident(): bool { return notResident == 0; }
