"""The service configurations a set of rendered Kubernetes manifests gives the strata containers.

    python deploy_configs.py check MANIFESTS.yaml WORKDIR BIN_DIR

For every Deployment or StatefulSet container that runs a strata binary (`strata-registry`,
`strata-edge`, `strata-sync`): the files its ConfigMap and Secret volumes mount are written under
WORKDIR/<workload>/ (paths inside the TOML that point into a mount are rewritten to the local
copy), its environment is resolved (literal values, ConfigMap and Secret keys found in the
manifests, the pod name; Secrets created outside the manifests — existingSecret — get stand-in
values: for the checksum database's signer key, a key made with `BIN_DIR/strata sumdb keygen`
for the [ledger] name of the workload's registry.toml), and
`BIN_DIR/<binary> --check-config --config <file>` must accept it.

Used by scripts/check-k8s.sh; `workloads()` is also what the rendered-chart boot test starts.
Run with the deploy tools' Python (scripts/deploy-tools.sh: PyYAML).
"""

import base64
import json
import os
import pathlib
import re
import subprocess
import sys
import tomllib

import yaml

BINARIES = ("strata-registry", "strata-edge", "strata-sync")

# Stand-ins for keys of Secrets that are not part of the manifests (created by the operator).
STAND_INS = {
    "url": "redis://127.0.0.1:6379",
    "AWS_ACCESS_KEY_ID": "stand-in-access-key",
    "AWS_SECRET_ACCESS_KEY": "stand-in-secret-key",
    # The ledger's signer key (ledger.existingSecret): made in check() by `strata sumdb keygen`
    # for the name of the workload's [ledger].
    "signer-key": "<stand-in signer key>",
}
SIGNER_STAND_IN = STAND_INS["signer-key"]


def load(path):
    return [d for d in yaml.safe_load_all(pathlib.Path(path).read_text()) if d]


def objects(docs, kind):
    return {d["metadata"]["name"]: d for d in docs if d.get("kind") == kind}


def secret_data(secret):
    data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    data.update(secret.get("stringData") or {})
    return data


class Workload:
    """One strata container: its binary, arguments, environment and mounted files."""

    def __init__(self, name, binary, args, env, files, mounts):
        self.name = name
        self.binary = binary
        self.args = args
        self.env = env
        self.files = files  # container path -> text
        self.mounts = mounts  # mount path -> local directory (once materialised)

    def materialise(self, root):
        """Writes the mounted files under root/<name>/ and returns (args, env) with container
        paths replaced by the local ones."""
        base = pathlib.Path(root) / self.name
        local = {}
        for path, text in self.files.items():
            target = base / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            local[path] = str(target)
        # Rewrite mount paths inside every file and argument, longest first.
        prefixes = sorted({os.path.dirname(p) for p in self.files}, key=len, reverse=True)

        def rewrite(text):
            for prefix in prefixes:
                text = text.replace(prefix + "/", str(base / prefix.lstrip("/")) + "/")
            return text

        for path, text in self.files.items():
            pathlib.Path(local[path]).write_text(rewrite(text))
        args = [rewrite(a) for a in self.args]
        env = {k: rewrite(v) for k, v in self.env.items()}
        return args, env


def workloads(docs):
    """The strata containers of `docs`."""
    configmaps = objects(docs, "ConfigMap")
    secrets = objects(docs, "Secret")
    found = []
    for doc in docs:
        if doc.get("kind") not in ("Deployment", "StatefulSet"):
            continue
        pod = doc["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for container in pod["containers"]:
            command = (container.get("command") or []) + (container.get("args") or [])
            binary = next((b for b in BINARIES if command and command[0].endswith(b)), None)
            if binary is None:
                continue
            env = {}
            for e in container.get("env", []):
                if "value" in e:
                    env[e["name"]] = str(e["value"])
                    continue
                source = e.get("valueFrom", {})
                if "fieldRef" in source:
                    env[e["name"]] = doc["metadata"]["name"] + "-0"
                elif "secretKeyRef" in source:
                    ref = source["secretKeyRef"]
                    data = secret_data(secrets[ref["name"]]) if ref["name"] in secrets else {}
                    if ref["key"] in data:
                        env[e["name"]] = data[ref["key"]]
                    elif ref["key"] in STAND_INS:
                        env[e["name"]] = STAND_INS[ref["key"]]
                    else:
                        sys.exit(f"{doc['metadata']['name']}: env {e['name']} needs key {ref['key']} "
                                 f"of Secret {ref['name']}, which has no stand-in")
                elif "configMapKeyRef" in source:
                    ref = source["configMapKeyRef"]
                    env[e["name"]] = configmaps[ref["name"]]["data"][ref["key"]]
            files, mounts = {}, {}
            for mount in container.get("volumeMounts", []):
                volume = volumes.get(mount["name"], {})
                # A volume's sources: one ConfigMap or Secret, or several projected together.
                if "projected" in volume:
                    sources = volume["projected"].get("sources", [])
                else:
                    sources = [volume]
                mounted = False
                for source in sources:
                    if "configMap" in source:
                        ref = source["configMap"]
                        data = configmaps[ref["name"]].get("data", {})
                    elif "secret" in source:
                        ref = source["secret"]
                        name = ref.get("secretName", ref.get("name"))
                        if name not in secrets:
                            continue  # TLS and other operator-made Secrets: not configuration
                        data = secret_data(secrets[name])
                    else:
                        continue
                    items = ref.get("items")
                    pairs = [(i["key"], i["path"]) for i in items] if items else [(k, k) for k in data]
                    for key, rel in pairs:
                        if mount.get("subPath"):
                            if mount["subPath"] != rel:
                                continue
                            files[mount["mountPath"]] = data[key]
                        else:
                            files[os.path.join(mount["mountPath"], rel)] = data[key]
                    mounted = True
                if mounted:
                    mounts[mount["mountPath"]] = volume
            found.append(Workload(doc["metadata"]["name"], binary, command[1:], env, files, mounts))
    return found


def signer_key_stand_in(w, bin_dir):
    """A signer key for the [ledger] of the workload's registry.toml (`strata sumdb keygen`)."""
    names = {tomllib.loads(text)["ledger"]["name"] for path, text in w.files.items()
             if path.endswith(".toml") and re.search(r"^\[ledger\]", text, re.M)}
    if len(names) != 1:
        sys.exit(f"{w.name}: a signer key from a Secret, but [ledger] names {sorted(names)}")
    name = names.pop()
    result = subprocess.run([str(pathlib.Path(bin_dir) / "strata"), "sumdb", "keygen", name],
                            capture_output=True, text=True)
    if result.returncode != 0 or not result.stdout.startswith(f"PRIVATE+KEY+{name}+"):
        sys.exit(f"strata sumdb keygen {name} failed: {result.stderr}")
    print(f"deploy-configs: {w.name}: the ledger's signer key (an operator's Secret) → a "
          f"stand-in from `strata sumdb keygen {name}`")
    return result.stdout.strip()


def check(manifests, workdir, bin_dir):
    docs = load(manifests)
    found = workloads(docs)
    if not found:
        sys.exit(f"{manifests}: no strata container found")
    failed = False
    for w in found:
        args, env = w.materialise(workdir)
        for name, value in env.items():
            if value == SIGNER_STAND_IN:
                env[name] = signer_key_stand_in(w, bin_dir)
        full_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("STRATA_", "OTEL_", "AWS_"))}
        full_env.update(env)
        cmd = [str(pathlib.Path(bin_dir) / w.binary), "--check-config", *args]
        result = subprocess.run(cmd, env=full_env, capture_output=True, text=True)
        if result.returncode != 0:
            failed = True
            print(f"deploy-configs: {w.name}: {' '.join(cmd)} exited {result.returncode}:\n"
                  f"{result.stdout}{result.stderr}", file=sys.stderr)
        else:
            print(f"deploy-configs: {w.name} ({w.binary}): {result.stdout.strip()}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "check":
        check(*sys.argv[2:])
    else:
        sys.exit(__doc__)
