# Developer shortcuts; each target is one command you can also run by hand.
.PHONY: test ci crds validate-samples fmt clippy images e2e chart-crds plugin

test:            ## the whole test suite (installs what it needs)
	./scripts/test.sh

ci:              ## what CI runs: fmt, clippy, tests
	./.ci/run

crds:            ## regenerate crds/ from the Rust types (and the chart's copy)
	cargo run -q -p ia-operator --bin trading-operator -- crds --out-dir crds
	cp crds/trading.ia-agents.dev_*.yaml charts/ia-agents/crds/

validate-samples: ## check config/samples against the CRDs, offline
	cargo run -q -p ia-operator --bin trading-operator -- validate -f config/samples/*.yaml

plugin:          ## install kubectl-ia_agents on the PATH (then: kubectl ia-agents status STRATEGY)
	cargo install --locked --path operator --bin kubectl-ia_agents

fmt:
	cargo fmt --all

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

images:          ## build the operator and agent images (one Dockerfile, two targets)
	docker build --target operator -t ghcr.io/ia-agents/trading-operator:$(VERSION) .
	docker build --target agent -t ghcr.io/ia-agents/trading-agent:$(VERSION) .

chart-crds:      ## copy the generated CRDs into the Helm chart (a test keeps them identical)
	cp crds/trading.ia-agents.dev_*.yaml charts/ia-agents/crds/

e2e:             ## kind end-to-end: cluster, images, chart, samples, Ready, scale, a decision, teardown
	./scripts/e2e.sh
