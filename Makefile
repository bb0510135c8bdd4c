# Postwerk: `make run` starts the server, `make test` runs the whole suite. Both set everything up first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
JS_STAMP := tests/js/node_modules/.installed-stamp

.PHONY: run test lint install js-deps mail-deps bench clean

run: install mail-deps
	$(BIN)/postwerk serve

test: install js-deps mail-deps lint
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy --strict src

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "python3 -m venv failed: installing Debian's python3-venv (needs root)"; \
	  apt-get install -y python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	@touch $(STAMP)

# The mail servers (Postfix 3.7 and Dovecot 2.3 from Debian) and the system accounts Postwerk's own
# instances run as. Needs root; does nothing when everything is present already.
#   postwerk          the group that may read the SQLite database (and write its WAL index)
#   postwerk-postfix  mail_owner of Postwerk's Postfix instance, primary group postwerk: Postfix drops
#                     supplementary groups when it gives up root (the system `postfix` user is left alone).
#                     Dovecot's auth service gets the group by extra_groups.
#   postwerk-mail     owns the mail storage (Maildirs named by mailbox id); Dovecot's mail processes and its
#                     LDA run as it. A group of its own: Postfix's pipe(8) refuses the mail_owner's group.
# swaks (the submission tests' SMTP client) needs libnet-ssleay-perl for STARTTLS and implicit TLS: only
# recommended by the package, and recommendations are not installed here.
MAIL_PACKAGES := postfix postfix-sqlite postfix-pgsql dovecot-core dovecot-imapd dovecot-pop3d \
	dovecot-lmtpd dovecot-sqlite dovecot-pgsql dovecot-sieve swaks libnet-ssleay-perl curl openssl

mail-deps:
	@if ! dpkg -s $(MAIL_PACKAGES) >/dev/null 2>&1; then \
	  echo "installing the mail servers from Debian (needs root): $(MAIL_PACKAGES)"; \
	  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections && \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(MAIL_PACKAGES) >/dev/null; \
	fi
	@getent group postwerk >/dev/null || groupadd --system postwerk
	@getent passwd postwerk-postfix >/dev/null || useradd --system --gid postwerk --no-create-home \
	  --home-dir /nonexistent --shell /usr/sbin/nologin postwerk-postfix
	@getent group postwerk-mail >/dev/null || groupadd --system postwerk-mail
	@getent passwd postwerk-mail >/dev/null || useradd --system --gid postwerk-mail --no-create-home \
	  --home-dir /nonexistent --shell /usr/sbin/nologin postwerk-mail
	@[ "$$(id -gn postwerk-mail)" = postwerk-mail ] || usermod -g postwerk-mail postwerk-mail

# The JS client smoke test needs Node.js and npm; without them it skips (and fails under CI).
js-deps: $(JS_STAMP)

$(JS_STAMP): tests/js/package.json tests/js/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix tests/js --no-audit --no-fund --loglevel=error && touch $(JS_STAMP); \
	else echo "npm not found: the JS client smoke test will be skipped"; fi

bench: install
	$(BIN)/python bench/api.py

clean:
	rm -rf $(VENV) tests/js/node_modules
