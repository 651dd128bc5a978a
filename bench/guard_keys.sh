# Sourced by bench/guards.sh and bench/instructions.sh: the two keys they compare and the
# Michi config that serves them (bench/choice.sh takes port() only). Expects MICHI_BIN and TMP.

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
keygen() { "$MICHI_BIN" keygen --class "$1" >"$TMP/$2.key"; }
field() { awk -v f="$1:" '$1 == f {print $2}' "$TMP/$2.key"; }

# Makes the keys "free" (no limits) and "guarded" (every guard, limits far above what a run
# reaches, so nothing is refused) and writes $TMP/michi.yaml.
#   guard_keys_config MICHI_PORT MOCK_PORT THREADS
guard_keys_config() {
    keygen application free
    keygen agent guarded
    cat >"$TMP/michi.yaml" <<YAML
server: { listen: "127.0.0.1:$1", threads: $3 }
log: { level: warn }
store: { sqlite: "$TMP/michi.db" }
providers: { mock: { type: openai, base_url: "http://127.0.0.1:$2/v1" } }
models: { mock/gpt-bench: { input_per_mtok: 0.15, output_per_mtok: 0.6 } }
keys:
  - { id: free, class: application, secret_sha256: "$(field secret_sha256 free)" }
  - { id: guarded, class: agent, secret_sha256: "$(field secret_sha256 guarded)",
      daily_usd: 1000000, monthly_usd: 1000000, rpm: 1000000000, tpm: 1000000000000,
      loop_max: 20, loop_window: 60s }
YAML
}
