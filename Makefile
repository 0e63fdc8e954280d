# Everything a developer or CI needs; the first target that needs the venv creates it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 3000
# every adapter's framework, so the whole suite runs; `pip install approval-bot` needs none
PEERS  ?= .venv-peers
EXTRAS ?= dev,langgraph,mcp,openai-agents,pydantic-ai,autogen,claude,google-adk,agent-framework,strands

.PHONY: run test check lint types unit bench bench-peers clean

# `make run` needs the bot alone; tests and the bench add the dev tools and every framework.
$(BIN)/approval-bot: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.everything: $(BIN)/approval-bot
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	@touch $@

run: $(BIN)/approval-bot           ## the bot with a local Slack workspace on 127.0.0.1:$(PORT)
	$(BIN)/approval-bot dev --port $(PORT)

test: $(VENV)/.everything           ## the README's test command: Chromium and PostgreSQL too, then check
	scripts/with-test-services $(MAKE) --no-print-directory check

check: lint types unit

lint: $(VENV)/.everything
	$(BIN)/ruff format --check bot tests bench examples
	$(BIN)/ruff check bot tests bench examples

types: $(VENV)/.everything
	$(BIN)/mypy

unit: $(VENV)/.everything
	$(BIN)/pytest -q

bench: $(VENV)/.everything         ## the benchmark suite: a table, bench/results.json, bench/latency.png
	$(BIN)/python -m bench

bench-peers: $(VENV)/.everything $(PEERS)/bin/awaithumans   ## resume latency vs awaithumans and a 3 s poller
	$(BIN)/python -m pip install --quiet 'awaithumans==0.1.12'
	$(BIN)/python -m bench peers --awaithumans $(PEERS)/bin/awaithumans

$(PEERS)/bin/awaithumans:           # awaithumans' server and its dependencies, apart from the bot's
	$(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install --quiet 'awaithumans[server]==0.1.12'

clean:
	rm -rf $(VENV) $(PEERS) build *.egg-info
