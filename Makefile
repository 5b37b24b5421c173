# tiny-model-ground-truth. Set-up is two commands: `make check` and `make test`.
export ONNXRUNTIME_NODE_INSTALL := skip
NODE_STAMP := node_modules/.package-lock.json
TMGT := node bin/tmgt.js
# The engine's WebAssembly SIMD kernels, built from their AssemblyScript source (the .wasm is gitignored).
WASM := src/engine/wasm/build/kernels.wasm

.PHONY: check test lint format ticket models typecheck bench clean nightly

# npm ci when node_modules is missing or older than the lock file.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $(NODE_STAMP)

check: $(NODE_STAMP) $(WASM)
	$(TMGT) check

# The last line, `tests: N passed, M failed`, is the plain summary CI reads. suites/ (the parity claims over
# the default matrix, `npx vitest run suites/`) is left out: test/converters/targets.test.ts runs the same cells.
test: $(NODE_STAMP) $(WASM) browser lint
	@mkdir -p reports
	npx vitest run --exclude 'suites/**' --reporter=default --reporter=json --outputFile.json=reports/vitest.json; status=$$?; \
	  node -e 'const r=require("./reports/vitest.json");console.log(`tests: $${r.numPassedTests} passed, $${r.numFailedTests} failed`)'; \
	  exit $$status

# The lint gate: the type check, prettier (formatting, lines ≤ 140) and typescript-eslint with type information, the
# layer direction of DESIGN.md §3 and casts that say why (eslint.config.js, tools/eslint-rules.js).
lint: $(NODE_STAMP)
	npx tsc --noEmit
	npx prettier --check --log-level warn .
	npx eslint --max-warnings 0 .

format: $(NODE_STAMP)
	npx prettier --write --log-level warn .

# reports/TICKET.md from the last run's reports/parity.json: one issue-ready section per failure group.
ticket: $(NODE_STAMP)
	$(TMGT) ticket

models: $(NODE_STAMP)
	$(TMGT) models build llama-tiny qwen2-tiny gpt2-tiny

# Shape-faithful models (SmolLM-135M, Qwen2-0.5B, GPT-2 124M shapes): built on demand, checked against float64; then
# every target × {reference, llama.cpp's quantizer} and the seed mutants plus one mutant per bug class at shape scale,
# with reports/calibration.md (reference value, llama.cpp's value, bound, worst mutant value per target and metric).
nightly: $(NODE_STAMP) $(WASM)
	TMGT_NIGHTLY=1 npx vitest run test/nightly
	$(TMGT) check --models llama-tiny-llama3,qwen2-tiny-qwen --report-dir reports/nightly-vocab
	npx tsx nightly/calibrate.ts

$(WASM): src/engine/wasm/assembly/kernels.ts src/engine/wasm/build.mjs $(NODE_STAMP)
	node src/engine/wasm/build.mjs

.PHONY: wasm
wasm: $(WASM)

# Engine throughput (tinybench): bundled vs onnxruntime-node vs llama.cpp, writes reports/bench.json. Never in `make test`.
bench: $(NODE_STAMP) $(WASM)
	@mkdir -p reports
	npx tsx bench/run.ts

# Every reader and the sniffing dispatcher over 100,000 malformed inputs each (FUZZ_INPUTS to change), in
# memory-capped children with a per-input time bound; one `fuzz <target>: …` line each, exit 1 on any crash
# or hang. Interesting inputs go to test/fuzz-corpus/, which `make test` replays.
.PHONY: fuzz
fuzz: $(NODE_STAMP)
	@node --import tsx fuzz/main.ts

typecheck: $(NODE_STAMP)
	npx tsc --noEmit

# Headless Chromium for the dashboard's browser test (test/report/dashboard-browser.test.ts): Debian's own
# package, installed only when missing (~90 s), so playwright-core never downloads a browser.
.PHONY: browser
browser:
	@test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)

clean:
	rm -rf .cache node_modules/.cache/tmgt dist reports/*.json reports/*.html reports/*.xml

# Re-train the tiny models: corpus + held-out split, shared tokenizer, weights and specs in models/, then
# check each with the onnxruntime oracle. Not run in CI (the outputs are committed); ~30 min on one core.
.PHONY: models-train
models-train: $(NODE_STAMP)
	npx tsx training/cli.ts
