// Sends errors to the DSN in argv[2] with the real @sentry/node, prints the event ids as JSON.
const Sentry = require("@sentry/node");

async function main() {
  const dsn = process.argv[2];
  Sentry.init({
    dsn,
    release: "web@2.0.1",
    environment: "production",
    sendClientReports: false,
    integrations: (defaults) =>
      defaults.filter((i) => !["Http", "NodeFetch", "OnUncaughtException", "OnUnhandledRejection"].includes(i.name)),
  });
  const ids = {};
  Sentry.setTag("runtime", "node");
  Sentry.setUser({ id: "u-7", email: "grace@example.test" });
  Sentry.addBreadcrumb({ category: "db", message: "query users", level: "info" });

  function loadConfig() {
    throw new TypeError("config file missing");
  }
  function startServer() {
    try {
      loadConfig();
    } catch (err) {
      throw new Error("server failed to start", { cause: err });
    }
  }
  try {
    startServer();
  } catch (err) {
    ids.exception = Sentry.withScope((scope) => {
      scope.addAttachment({ filename: "env.txt", data: "NODE_ENV=production\n" });
      scope.setContext("request", {});
      scope.addEventProcessor((event) => {
        event.request = {
          url: "http://api.test/start",
          method: "GET",
          headers: { authorization: "Basic dXNlcjpwYXNzd29yZA==", "user-agent": "t" },
        };
        return event;
      });
      return Sentry.captureException(err);
    });
  }
  ids.message = Sentry.captureMessage("cache miss for key 991", "warning");
  const ok = await Sentry.flush(10000);
  process.stdout.write(JSON.stringify({ ok, ids }) + "\n");
  await Sentry.close(2000);
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack) + "\n");
  process.exit(1);
});
