#!/bin/sh
# PID 1 of the test guest (busybox sh inside the initramfs).
# It stays PID 1 and runs the test as a child: with the test's shell as PID 1,
# NVMe/TCP connects were measured 10x slower.
# The host hands over everything per run through the 9p share "run": the file
# .run-dir names the host folder shared, and guest.sh in it is what to run.
# With .guest-init saying "systemd", it hands over to systemd instead (see
# boot_systemd below).

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
init_mode=$(cat /share/.guest-init 2>/dev/null)
if [ "$init_mode" = systemd ]; then
  for m in $(cat /modules-systemd); do
    insmod "/lib/modules/$m.ko" || fail "insmod $m failed"
  done
  # systemd needs a writable root. An overlay keeps the cached tree pristine:
  # the read-only 9p tree as its lower layer (6.12 accepts 9p there), a tmpfs
  # on top that dies with the guest. Measured: it costs nothing per run,
  # where a writable per-run copy of the tree on the host took 2.6 s and
  # 378 MB of disk (each of them, for guests run side by side).
  mkdir /rw
  mount -t tmpfs -o mode=0755 tmpfs /rw || fail "mounting the overlay's tmpfs failed"
  mkdir /rw/upper /rw/work
  mount -t overlay -o "lowerdir=/host$root,upperdir=/rw/upper,workdir=/rw/work" overlay /newroot ||
    fail "mounting the overlay on $root failed"
  # systemd mounts /proc, /sys, /dev/pts and /dev/shm itself and keeps a
  # /run or /tmp it finds mounted: made here, the binds below stay on top.
  mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /newroot/run || fail "mounting /run failed"
  mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /newroot/tmp || fail "mounting /tmp failed"
else
  mount -o bind "/host$root" /newroot || fail "binding the root $root failed"
  mount -t proc proc /newroot/proc
  mount -t sysfs sysfs /newroot/sys
  mount -t devtmpfs devtmpfs /newroot/dev
  mkdir -p /newroot/dev/pts /newroot/dev/shm
  mount -t devpts devpts /newroot/dev/pts
  for d in /tmp /run /root /dev/shm; do
    mount -t tmpfs tmpfs "/newroot$d" || fail "mounting tmpfs on $d failed"
  done
fi
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

# systemd as PID 1: a service, guest-test.service, runs guest.sh once the
# system is up (dbus and udevd as real services), sends its output to ttyS1
# and its exit code to the run share as this script does below, then powers
# the guest off. Type=exec, not oneshot: boot-up completes while the test
# runs, as on a host an operator logs into. Unit and runner live in /run
# (the tmpfs above), so the root's /etc stays as debootstrap made it; units
# the root enables at boot but a test must start itself (.guest-disable) are
# disabled in the overlay only. This init mounted no /proc or /sys of its
# own; its /dev moves into the new root.
boot_systemd() {
  units=/newroot/run/systemd/system
  mkdir -p "$units/multi-user.target.wants"
  cat >/newroot/run/guest-test.sh <<RUNNER
#!/bin/sh
# Written by the test guest's init (tests/guest/init.sh).
{
  /bin/sh '$run_dir/guest.sh' </dev/null 2>&1
  echo \$? >/run/guest-test.exit-code
} | cat >/dev/ttyS1
cp /run/guest-test.exit-code '$run_dir/exit-code'
sync
RUNNER
  cat >"$units/guest-test.service" <<UNIT
# Written by the test guest's init (tests/guest/init.sh).
[Unit]
Description=Test bed: this guest run's script
Wants=dbus.service
After=dbus.service systemd-udevd.service network.target

[Service]
Type=exec
ExecStart=/bin/sh /run/guest-test.sh
ExecStopPost=/bin/systemctl --no-block poweroff
UNIT
  ln -s ../guest-test.service "$units/multi-user.target.wants/guest-test.service"
  for unit in $(cat "/newroot$run_dir/.guest-disable" 2>/dev/null); do
    rm -f /newroot/etc/systemd/system/*.wants/"$unit"
  done
  mount -o move /dev /newroot/dev || fail "moving /dev failed"
  exec switch_root /newroot /lib/systemd/systemd
}
[ "$init_mode" = systemd ] && boot_systemd

{
  chroot /newroot /bin/sh "$run_dir/guest.sh" </dev/null 2>&1
  echo $? >/exit-code
} | cat >/dev/ttyS1
cat /exit-code >"/newroot$run_dir/exit-code"
sync
poweroff -f
