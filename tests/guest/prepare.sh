# Sourced (as root, in the guest's chroot) before every guest script: loads
# the NVMe host and target drivers and sets up what the kernel and nvme-cli
# expect to find. The generated guest.sh sets `set -e` and the environment.

modprobe -a nvme-fabrics nvme-tcp nvmet nvmet-tcp
# One null block device is enough: namespaces of many subsystems can share it.
modprobe null_blk nr_devices=1
# Under systemd as PID 1 (guest.ts init "systemd"), sys-kernel-config.mount
# has mounted it already.
mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config
ip link set lo up

# Connects need a host NQN and ID. nvme-cli's postinst writes both into the
# host's /etc/nvme, which the guest sees read-only; when they are missing,
# cover /etc/nvme with a tmpfs copy that has generated ones.
if [ ! -s /etc/nvme/hostnqn ] || [ ! -s /etc/nvme/hostid ]; then
  if [ ! -d /etc/nvme ]; then
    echo "guest prepare: /etc/nvme is missing on the host: run tests/guest/setup.ts" >&2
    exit 1
  fi
  mkdir -p /run/guest-nvme
  cp -a /etc/nvme/. /run/guest-nvme/
  # Not `nvme gen-hostnqn`: it derives the UUID from DMI, all zeros in QEMU.
  uuid=$(cat /proc/sys/kernel/random/uuid)
  if [ ! -s /run/guest-nvme/hostnqn ]; then
    echo "nqn.2014-08.org.nvmexpress:uuid:$uuid" >/run/guest-nvme/hostnqn
  fi
  if [ ! -s /run/guest-nvme/hostid ]; then
    echo "$uuid" >/run/guest-nvme/hostid
  fi
  mount --bind /run/guest-nvme /etc/nvme
  echo "guest prepare: generated /etc/nvme/hostnqn $(cat /etc/nvme/hostnqn)" >&2
fi
