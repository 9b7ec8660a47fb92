// A real OpenID provider (the npm package oidc-provider) for the broker's single sign-on
// tests, on 127.0.0.1. tests/oidc_support.py starts it with:
//   PORT, CLIENT_SECRET, REDIRECT_URI  the broker's client ("broker") and its callback
//   ACCOUNTS   JSON: {"<login>": {"email": ..., "email_verified": true, "groups": [...]}}
// Its development sign-in pages take any login named in ACCOUNTS (and any password).
// POST /test/mode {"mode": "wrong_audience" | ""} makes the token endpoint hand out ID
// tokens signed with the provider's own key but addressed to another client: a token the
// provider made for another application, which the broker must refuse.
import { createServer } from "node:http";
import Provider from "oidc-provider";
import * as jose from "jose";

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const accounts = JSON.parse(process.env.ACCOUNTS || "{}");
const { privateKey } = await jose.generateKeyPair("RS256", { extractable: true });
const signing = { ...(await jose.exportJWK(privateKey)), kid: "test-key", alg: "RS256", use: "sig" };
let mode = "";

const provider = new Provider(issuer, {
  clients: [{
    client_id: "broker", client_secret: process.env.CLIENT_SECRET,
    redirect_uris: [process.env.REDIRECT_URI], grant_types: ["authorization_code"],
    response_types: ["code"], token_endpoint_auth_method: "client_secret_basic",
  }],
  jwks: { keys: [signing] },
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"],
            groups: ["groups"] },
  scopes: ["openid", "email", "profile", "groups"],
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  // A first-party client: no consent page, the scopes asked for are granted.
  async loadExistingGrant(ctx) {
    const grant = new provider.Grant({ clientId: ctx.oidc.client.clientId,
                                       accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope("openid email profile groups");
    await grant.save();
    return grant;
  },
  async findAccount(ctx, id) {
    if (!(id in accounts)) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...accounts[id] }; } };
  },
});

provider.use(async (ctx, next) => {
  if (ctx.path === "/test/mode" && ctx.method === "POST") {
    let body = "";
    for await (const chunk of ctx.req) body += chunk;
    mode = JSON.parse(body).mode || "";
    ctx.status = 204;
    return;
  }
  await next();
  if (ctx.path === "/token" && mode === "wrong_audience" && ctx.body && ctx.body.id_token) {
    const claims = jose.decodeJwt(ctx.body.id_token);
    ctx.body.id_token = await new jose.SignJWT({ ...claims, aud: "another-app" })
      .setProtectedHeader({ alg: "RS256", kid: "test-key" }).sign(privateKey);
  }
});

const server = createServer(provider.callback());
server.listen(port, "127.0.0.1", () => console.log(`ready ${issuer}`));
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => server.close(() => process.exit(0)));
