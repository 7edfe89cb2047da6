#!/usr/bin/python3
"""What can be proven here about the image and the deployments without Docker or Kubernetes.

- docker/Dockerfile: its build context (the repository minus .dockerignore) holds no host build
  or node_modules and configures with the Dockerfile's own cmake command; the runtime stage
  installs a package for every shared library the gateway links; it runs as a numeric non-root
  user and has a HEALTHCHECK on /health.
- docker/compose.yaml and docker/compose.replicas.yaml pass `docker-compose config`, name every node
  of their gateway config as a service, and refuse to start the replicas without a Redis password;
  docker/haproxy.cfg passes `haproxy -c`; deploy/prometheus/prometheus.yml `promtool check config`.
- deploy/kubernetes: every manifest is well formed, selectors match their pods, Services and
  probes name ports that exist, the ConfigMap's gateway config passes `llmgw serve --check-config`,
  finds the StatefulSet's pods by their SRV records (DNS discovery) and names the Redis Service.

Run by ctest as ops.deploy (LLMGW_BINARY, LLMGW_SOURCE_DIR in the environment).
"""

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import unittest

import yaml

SOURCE = os.environ.get("LLMGW_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
SOURCE = os.path.abspath(SOURCE)
BINARY = os.environ.get("LLMGW_BINARY", os.path.join(SOURCE, "build", "ci", "llmgw"))


def run(args, **kwargs):
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kwargs)


def check_config(text):
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    try:
        return run([BINARY, "serve", "--check-config", "--config", f.name])
    finally:
        os.unlink(f.name)


# --- docker/Dockerfile -------------------------------------------------------------------------


def dockerignore_patterns():
    with open(os.path.join(SOURCE, ".dockerignore")) as f:
        lines = [line.strip() for line in f]
    return [line for line in lines if line and not line.startswith("#")]


def ignored(relative, patterns):
    """Docker's rule for plain patterns: a pattern excludes a path it matches and all below it."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        plain = pattern.removeprefix("**/")
        for prefix in prefixes:
            if fnmatch.fnmatchcase(prefix, pattern):
                return True
            if pattern.startswith("**/") and fnmatch.fnmatchcase(prefix.split("/")[-1], plain):
                return True
    return False


def copy_context(destination):
    """Copies the build context as `docker build` would send it; returns its relative paths."""
    patterns = dockerignore_patterns()
    sent = []
    for root, dirs, files in os.walk(SOURCE):
        rel_root = os.path.relpath(root, SOURCE)
        rel_root = "" if rel_root == "." else rel_root + "/"
        dirs[:] = [d for d in dirs if not ignored(rel_root + d, patterns)]
        for name in files:
            relative = rel_root + name
            if ignored(relative, patterns):
                continue
            target = os.path.join(destination, relative)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(os.path.join(root, name), target, follow_symlinks=False)
            sent.append(relative)
    return sent


def dockerfile_stages():
    with open(os.path.join(SOURCE, "docker", "Dockerfile")) as f:
        text = f.read().replace("\\\n", " ")
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), rest.strip()))
    return stages


class Dockerfile(unittest.TestCase):
    def test_context_leaves_out_host_builds_and_configures_with_the_dockerfiles_command(self):
        build_stage = dockerfile_stages()[0]
        cmake = [rest for instr, rest in build_stage if instr == "RUN" and "cmake --preset" in rest]
        self.assertEqual(len(cmake), 1, "one RUN line configures and builds")
        configure = cmake[0].split("&&")[0].strip()
        with tempfile.TemporaryDirectory(prefix="llmgw-docker-context-") as context:
            sent = copy_context(context)
            self.assertFalse([p for p in sent if p.startswith("build/")], "a host build/ is sent")
            self.assertFalse([p for p in sent if "/node_modules/" in "/" + p], "node_modules sent")
            for instr, rest in build_stage:
                if instr == "COPY" and not rest.startswith(". "):
                    self.assertIn(rest.split()[0], sent, "COPY names a file of the context")
            result = run(shlex.split(configure), cwd=context,
                         env={**os.environ, "CCACHE_DISABLE": "1"})
            self.assertEqual(result.returncode, 0, f"{configure} in the context:\n"
                             f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}")

    def test_runtime_stage_installs_every_library_the_gateway_links(self):
        runtime = dockerfile_stages()[-1]
        installs = " ".join(rest for instr, rest in runtime if instr == "RUN")
        self.assertIn("apt-get install", installs)
        linked = run(["ldd", BINARY]).stdout
        missing = []
        for line in linked.splitlines():
            match = re.match(r"\s*(\S+) => (/\S+)", line)
            if not match or re.match(r"lib(asan|ubsan|c|m|stdc\+\+|gcc_s)\.so", match.group(1)):
                continue  # the sanitizers are the test build's; libc, libstdc++ are in debian:12-slim
            real = os.path.realpath(match.group(2))
            candidates = [match.group(2), real, real.removeprefix("/usr")]  # merged /usr
            owner = next((run(["dpkg", "-S", c]).stdout.split(":")[0] for c in candidates
                          if run(["dpkg", "-S", c]).returncode == 0), "")
            self.assertTrue(owner, f"no Debian package owns {match.group(2)}")
            if not re.search(r"(^|\s)" + re.escape(owner) + r"(\s|$)", installs):
                missing.append(f"{match.group(1)} ({owner})")
        self.assertFalse(missing, "the runtime image lacks these libraries' packages")

    def test_runs_as_a_numeric_non_root_user_with_a_health_check(self):
        runtime = dockerfile_stages()[-1]
        users = [rest for instr, rest in runtime if instr == "USER"]
        self.assertTrue(users, "the runtime stage sets a user")
        uid = users[-1].split(":")[0]
        self.assertTrue(uid.isdigit() and int(uid) != 0, f"USER {users[-1]} (numeric, not root)")
        checks = [rest for instr, rest in runtime if instr == "HEALTHCHECK"]
        self.assertTrue(checks and "/health" in checks[0], "HEALTHCHECK on /health")


# --- docker compose, HAProxy, Prometheus ----------------------------------------------------------


def compose_config(name, extra_env=None):
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_PASSWORD", "LLMGW_ADMIN_TOKEN")}
    env.update(extra_env or {})
    return run(["docker-compose", "-f", os.path.join(SOURCE, "docker", name), "config"], env=env)


class Compose(unittest.TestCase):
    def gateway_nodes(self):
        with open(os.path.join(SOURCE, "docker", "gateway.yaml")) as f:
            text = f.read()
        result = check_config(text)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        return {node["url"].split("//")[1].split(":")[0] for node in yaml.safe_load(text)["nodes"]}

    def test_single_gateway_file_is_valid_and_serves_its_nodes(self):
        result = compose_config("compose.yaml")
        self.assertEqual(result.returncode, 0, result.stderr)
        services = yaml.safe_load(result.stdout)["services"]
        self.assertTrue(self.gateway_nodes() <= services.keys())
        self.assertIn(8000, [int(p["published"]) for p in services["gateway"]["ports"]])
        self.assertIn("prometheus", services)
        self.assertIn("grafana", services)

    def test_replicas_file_needs_a_redis_password_and_shares_placements(self):
        refused = compose_config("compose.replicas.yaml")
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("REDIS_PASSWORD", refused.stderr)
        result = compose_config("compose.replicas.yaml", {"REDIS_PASSWORD": "s3cret"})
        self.assertEqual(result.returncode, 0, result.stderr)
        services = yaml.safe_load(result.stdout)["services"]
        self.assertTrue(self.gateway_nodes() <= services.keys())
        gateway = services["gateway"]
        self.assertEqual(gateway["deploy"]["replicas"], 2)
        self.assertTrue(gateway["environment"]["LLMGW_ROUTING_PLACEMENT_STORE"]
                        .startswith("redis://redis:"))
        self.assertNotIn("ports", gateway, "only HAProxy publishes a port")
        self.assertIn("haproxy", services)

    def test_haproxy_config_is_valid(self):
        result = run(["haproxy", "-c", "-f", os.path.join(SOURCE, "docker", "haproxy.cfg")])
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_prometheus_config_loads_the_alert_rules(self):
        result = run(["promtool", "check", "config",
                      os.path.join(SOURCE, "deploy", "prometheus", "prometheus.yml")])
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("alerts.yml", result.stdout)


# --- deploy/kubernetes -----------------------------------------------------------------------------


def kubernetes_objects():
    directory = os.path.join(SOURCE, "deploy", "kubernetes")
    with open(os.path.join(directory, "kustomization.yaml")) as f:
        resources = yaml.safe_load(f)["resources"]
    objects = []
    for name in resources:
        with open(os.path.join(directory, name)) as f:
            objects += [doc for doc in yaml.safe_load_all(f) if doc]
    return objects


def pod_specs(objects):
    return {o["metadata"]["name"]: o for o in objects if o["kind"] in ("Deployment", "StatefulSet")}


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


class Kubernetes(unittest.TestCase):
    def setUp(self):
        self.objects = kubernetes_objects()
        self.by_kind = {}
        for o in self.objects:
            self.by_kind.setdefault(o["kind"], {})[o["metadata"]["name"]] = o

    def test_every_object_is_well_formed_and_workloads_select_their_pods(self):
        for o in self.objects:
            self.assertTrue(o.get("apiVersion") and o.get("kind") and o["metadata"].get("name"), o)
        for name, workload in pod_specs(self.objects).items():
            labels = workload["spec"]["template"]["metadata"]["labels"]
            self.assertTrue(matches(workload["spec"]["selector"]["matchLabels"], labels), name)

    def test_services_and_probes_name_ports_that_exist(self):
        workloads = pod_specs(self.objects).values()
        for name, service in self.by_kind["Service"].items():
            selected = [w for w in workloads
                        if matches(service["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])]
            self.assertEqual(len(selected), 1, f"Service {name} selects one workload")
            containers = selected[0]["spec"]["template"]["spec"]["containers"]
            ports = {p.get("name") for c in containers for p in c["ports"]} | \
                {p["containerPort"] for c in containers for p in c["ports"]}
            for port in service["spec"]["ports"]:
                self.assertIn(port["targetPort"], ports, f"Service {name}")
        for workload in workloads:
            for container in workload["spec"]["template"]["spec"]["containers"]:
                names = {p["name"] for p in container["ports"]}
                for probe in ("readinessProbe", "livenessProbe"):
                    if probe in container:
                        action = container[probe].get("httpGet") or container[probe].get("tcpSocket")
                        self.assertIn(action["port"], names, f"{container['name']} {probe}")

    def test_gateway_is_two_replicas_ready_on_health_with_its_secrets_from_the_environment(self):
        gateway = self.by_kind["Deployment"]["llmgw"]
        self.assertEqual(gateway["spec"]["replicas"], 2)
        container = gateway["spec"]["template"]["spec"]["containers"][0]
        self.assertEqual(container["readinessProbe"]["httpGet"]["path"], "/health")
        env = {e["name"]: e for e in container["env"]}
        for name in ("LLMGW_ADMIN_TOKEN", "LLMGW_ROUTING_PLACEMENT_STORE_PASSWORD"):
            self.assertIn("secretKeyRef", env[name]["valueFrom"], name)
        annotations = gateway["spec"]["template"]["metadata"]["annotations"]
        self.assertEqual(annotations["prometheus.io/scrape"], "true")

    def test_configmap_config_is_valid_finds_the_ollama_pods_by_srv_and_names_redis(self):
        gateway = self.by_kind["Deployment"]["llmgw"]
        pod = gateway["spec"]["template"]["spec"]
        volume = next(v for v in pod["volumes"] if "configMap" in v)
        config_map = self.by_kind["ConfigMap"][volume["configMap"]["name"]]
        mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"])
        args = pod["containers"][0]["args"]
        config_path = args[args.index("--config") + 1]
        key = os.path.relpath(config_path, mount["mountPath"])
        self.assertIn(key, config_map["data"], "--config names a key of the mounted ConfigMap")
        text = config_map["data"][key]
        result = check_config(text)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        config = yaml.safe_load(text)
        ollama = self.by_kind["StatefulSet"]["ollama"]
        service = ollama["spec"]["serviceName"]
        self.assertEqual(self.by_kind["Service"][service]["spec"].get("clusterIP"), "None",
                         "the StatefulSet's Service is headless: each pod gets a DNS name")
        dns = config["discovery"]["dns"]
        self.assertTrue(dns["srv"], "the pods are found by their SRV records")
        port_names = {p["name"] for p in self.by_kind["Service"][service]["spec"]["ports"]}
        port_name, protocol, host = dns["name"].split(".", 2)
        self.assertEqual(protocol, "_tcp")
        self.assertIn(port_name.lstrip("_"), port_names, "the SRV name names a port of the Service")
        self.assertEqual(host, service, "the SRV name is the StatefulSet's headless Service")
        self.assertNotIn("nodes", config, "no static node list beside discovery")
        store = config["routing"]["placement_store"]
        self.assertIn(store.split("//")[1].split(":")[0], self.by_kind["Service"])
        drain_s = config["shutdown"]["drain_ms"] / 1000
        self.assertLess(drain_s, gateway["spec"]["template"]["spec"]["terminationGracePeriodSeconds"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
