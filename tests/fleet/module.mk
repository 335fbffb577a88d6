# tests/fleet/: `make check-fleet` (docs/FLEET.md): a three-member etcd
# cluster and three vtpmd on loopback, started and stopped by
# tests/fleet/test_fleet.sh (owner killed, paused, etcd members stopped).
# Needs etcd (tools/setup.sh installs etcd-server); a few minutes.
check-fleet: all
	BUILD=$(abspath $(BUILD)) tests/run-tests.sh tests/fleet/test_fleet.sh
