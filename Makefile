# Developer shortcuts; each target is one command you can also run by hand.
.PHONY: test ci crds validate-samples fmt clippy

test:            ## the whole test suite (installs what it needs)
	./scripts/test.sh

ci:              ## what CI runs: fmt, clippy, tests
	./.ci/run

crds:            ## regenerate crds/ from the Rust types
	cargo run -q -p ia-operator -- crds --out-dir crds

validate-samples: ## check config/samples against the CRDs, offline
	cargo run -q -p ia-operator -- validate -f config/samples/*.yaml

fmt:
	cargo fmt --all

clippy:
	cargo clippy --workspace --all-targets -- -D warnings
