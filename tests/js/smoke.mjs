// @ts-check
/**
 * Smoke test of Postwerk's API with mittwald's official JS client (@mittwald/api-client).
 *
 * Env: POSTWERK_BASE_URL (loopback only), POSTWERK_TOKEN, POSTWERK_PROJECT_ID, POSTWERK_DOMAIN.
 * Prints one JSON line with the results; exits 0 on success and 1 on any failure.
 */
import { randomBytes } from "node:crypto";

import { MittwaldAPIV2Client, assertStatus, extractTotalCountHeader } from "@mittwald/api-client";

const REQUEST_TIMEOUT_MS = 10_000;
const OVERALL_TIMEOUT_MS = 45_000;
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);
const QUOTA = 2 * 1024 ** 3;

/** @param {unknown} value @param {string} message @returns {asserts value} */
function check(value, message) {
  if (!value) throw new Error(message);
}

/** @param {string} name @returns {string} */
function env(name) {
  const value = process.env[name];
  check(value, `environment variable ${name} is not set`);
  return value;
}

/** @param {Record<string, unknown>} results */
function finish(results) {
  process.stdout.write(`${JSON.stringify(results)}\n`);
  process.exit(results.ok ? 0 : 1);
}

/** @type {Record<string, unknown>} */
const results = { ok: false, step: "setup" };

// Never hang: whatever happens, end after OVERALL_TIMEOUT_MS (unref'd, so it never keeps node alive).
setTimeout(() => finish({ ...results, ok: false, error: "overall timeout" }), OVERALL_TIMEOUT_MS).unref();

async function main() {
  const baseURL = env("POSTWERK_BASE_URL");
  const projectId = env("POSTWERK_PROJECT_ID");
  const domain = env("POSTWERK_DOMAIN");
  check(LOOPBACK.has(new URL(baseURL).hostname), `refusing a non-loopback base URL: ${baseURL}`);

  const client = MittwaldAPIV2Client.newWithToken(env("POSTWERK_TOKEN"));
  // The client is an ApiClientBase around its own axios instance; its defaults carry the base URL.
  client.axios.defaults.baseURL = baseURL;
  client.axios.defaults.timeout = REQUEST_TIMEOUT_MS;
  client.axios.defaults.proxy = false; // ignore HTTP(S)_PROXY: traffic goes straight to the test server
  client.axios.interceptors.request.use((config) => {
    const host = new URL(client.axios.getUri(config)).hostname;
    check(LOOPBACK.has(host), `refusing a request to ${host}`);
    return config;
  });

  const suffix = randomBytes(4).toString("hex");
  const mailboxAddress = `info-${suffix}@${domain}`;
  const forwardAddress = `fwd-${suffix}@${domain}`;
  const forwardTarget = `target-${suffix}@example.net`;

  results.step = "create mailbox";
  const createdMailbox = await client.mail.createMailAddress({
    projectId,
    data: {
      address: mailboxAddress,
      isCatchAll: false,
      mailbox: { password: `Pw-${suffix}-correct-horse`, quotaInBytes: QUOTA, enableSpamProtection: true },
    },
  });
  assertStatus(createdMailbox, 201);
  const mailboxId = createdMailbox.data.id;
  check(typeof mailboxId === "string" && mailboxId.length > 0, "create mailbox: no id");

  results.step = "create forward";
  const createdForward = await client.mail.createMailAddress({
    projectId,
    data: { address: forwardAddress, forwardAddresses: [forwardTarget] },
  });
  assertStatus(createdForward, 201);
  const forwardId = createdForward.data.id;

  results.step = "get mailbox";
  const mailbox = await client.mail.getMailAddress({ mailAddressId: mailboxId });
  assertStatus(mailbox, 200);
  check(mailbox.data.id === mailboxId, "get mailbox: wrong id");
  check(mailbox.data.address === mailboxAddress, `get mailbox: address ${mailbox.data.address}`);
  check(mailbox.data.projectId === projectId, `get mailbox: projectId ${mailbox.data.projectId}`);
  check(mailbox.data.isCatchAll === false, "get mailbox: isCatchAll is not false");
  check(mailbox.data.mailbox, "get mailbox: no mailbox");
  check(mailbox.data.mailbox.storageInBytes.limit === QUOTA, "get mailbox: wrong quota");
  check(mailbox.data.mailbox.spamProtection.active === true, "get mailbox: spam protection is off");

  results.step = "get forward";
  const forward = await client.mail.getMailAddress({ mailAddressId: forwardId });
  assertStatus(forward, 200);
  check(forward.data.address === forwardAddress, `get forward: address ${forward.data.address}`);
  check(forward.data.mailbox === undefined, "get forward: has a mailbox");
  const targets = forward.data.forwardAddresses;
  check(targets.length === 1 && targets[0] === forwardTarget, `get forward: targets ${targets}`);

  results.step = "list";
  const listed = await client.mail.listMailAddresses({ projectId, queryParameters: { limit: 50 } });
  const totalCount = extractTotalCountHeader(listed);
  assertStatus(listed, 200);
  const listedIds = listed.data.map((item) => item.id).sort();

  results.step = "delete mailbox";
  const deleted = await client.mail.deleteMailAddress({ mailAddressId: mailboxId });
  assertStatus(deleted, 204);

  results.step = "get after delete";
  const gone = await client.mail.getMailAddress({ mailAddressId: mailboxId });
  check(gone.status === 404, `get after delete: status ${gone.status}`);

  results.step = "list after delete";
  const relisted = await client.mail.listMailAddresses({ projectId });
  const totalCountAfterDelete = extractTotalCountHeader(relisted);

  return {
    ok: true,
    step: "done",
    mailboxId,
    forwardId,
    mailboxAddress,
    forwardAddress,
    listedIds,
    totalCount,
    totalCountAfterDelete,
    statusAfterDelete: gone.status,
  };
}

main().then(finish, (/** @type {any} */ error) => {
  const response = error?.response;
  finish({
    ...results,
    ok: false,
    error: String(error?.message ?? error),
    ...(response ? { status: response.status, body: response.data } : {}),
  });
});
