// Package deploy holds what an operator installs next to the kraftd binary,
// and the tests that keep those files honest:
//
//   - kraft.service: the systemd unit (/etc/systemd/system/kraft.service)
//   - kraft.env: an example /etc/kraft/kraft.env, read by kraftd --env-file
//   - prometheus/kraft-alerts.yml: Prometheus alerting rules
//   - grafana/kraft-dashboard.json: a Grafana dashboard
//   - collect-diagnostics.sh: the support archive of docs/operations.md
//
// The package has no Go code of its own; deploy_test.go parses every file,
// checks each metric name against the names kraftd exports, loads the env
// file through kraftd's own configuration loader, and (when promtool,
// systemd-analyze or a running cluster is available) runs the real tools.
package deploy
