#!/bin/sh
# PID 1 of the test guest (busybox sh inside the initramfs).
# It stays PID 1 and runs the test as a child: with the test's shell as PID 1,
# NVMe/TCP connects were measured 10x slower.
# The host hands over everything per run through the 9p share "run": the file
# .run-dir names the host folder shared, and guest.sh in it is what to run.

fail() {
  echo "guest init: $*" >&2
  poweroff -f
}

mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules); do
  insmod "/lib/modules/$m.ko" || fail "insmod $m failed"
done

opts=trans=virtio,version=9p2000.L,msize=262144
# cache=loose on the read-only host root: without it every exec and file read
# goes to the host (measured: deno start 3.6-8 s instead of 1.1-1.4 s, any
# command 0.4 s instead of 0.15 s). The run share stays uncached so results
# land at once.
mount -t 9p -o "$opts,ro,cache=loose" hostroot /host || fail "mounting the host root failed"
mount -t 9p -o "$opts" run /share || fail "mounting the run share failed"
# The guest's root is a folder of the host's: "/" itself (Debian 12, the
# host's own userspace) or a debootstrapped tree (Debian 13). Host folders it
# must also see (the checkout, the kernel's modules) are bound into it, one
# "HOST-PATH GUEST-PATH" per line of .guest-binds.
root=$(cat /share/.guest-root)
mount -o bind "/host$root" /newroot || fail "binding the root $root failed"
mount -t proc proc /newroot/proc
mount -t sysfs sysfs /newroot/sys
mount -t devtmpfs devtmpfs /newroot/dev
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts
for d in /tmp /run /root /dev/shm; do
  mount -t tmpfs tmpfs "/newroot$d" || fail "mounting tmpfs on $d failed"
done
# Binds after the tmpfs mounts: a checkout under /tmp (where CI may clone)
# stays visible, bound over the guest's fresh /tmp.
while read -r from to; do
  [ -n "$from" ] || continue
  mkdir -p "/newroot$to" 2>/dev/null
  mount -o bind "/host$from" "/newroot$to" || fail "binding $from to $to failed"
done </share/.guest-binds
# The share appears in the guest at the same path as on the host, so paths the
# test prints or writes mean the same on both sides.
run_dir=$(cat /share/.run-dir)
mount -o move /share "/newroot$run_dir" || fail "moving the run share to $run_dir failed"

# ttyS1 carries the test's output to the host untranslated (no \r\n). The
# test writes into a pipe, not the tty, so that tools log as they do in CI
# rather than redraw lines for a terminal.
stty -F /dev/ttyS1 raw -echo
{
  chroot /newroot /bin/sh "$run_dir/guest.sh" </dev/null 2>&1
  echo $? >/exit-code
} | cat >/dev/ttyS1
cat /exit-code >"/newroot$run_dir/exit-code"
sync
poweroff -f
