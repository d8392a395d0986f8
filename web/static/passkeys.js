// Passkeys: sign in with one, or add one. The pages work without this file (email links).

function toBytes(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)).buffer;
}

function toText(buffer) {
  let binary = "";
  for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function post(url, csrf, body) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
    body: JSON.stringify(body || {}),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.message || "");
  return data;
}

function showError(box, text) {
  const error = box.querySelector("#passkey-error");
  error.textContent = text;
  error.hidden = false;
}

async function signIn(box) {
  const options = await post(box.dataset.optionsUrl, box.dataset.csrf);
  options.challenge = toBytes(options.challenge);
  for (const c of options.allowCredentials || []) c.id = toBytes(c.id);
  const credential = await navigator.credentials.get({ publicKey: options });
  const r = credential.response;
  return post(box.dataset.verifyUrl, box.dataset.csrf, {
    id: credential.id,
    rawId: toText(credential.rawId),
    type: credential.type,
    response: {
      clientDataJSON: toText(r.clientDataJSON),
      authenticatorData: toText(r.authenticatorData),
      signature: toText(r.signature),
      userHandle: r.userHandle ? toText(r.userHandle) : null,
    },
    clientExtensionResults: credential.getClientExtensionResults(),
    authenticatorAttachment: credential.authenticatorAttachment,
  });
}

async function add(box) {
  const options = await post(box.dataset.optionsUrl, box.dataset.csrf);
  options.challenge = toBytes(options.challenge);
  options.user.id = toBytes(options.user.id);
  for (const c of options.excludeCredentials || []) c.id = toBytes(c.id);
  const credential = await navigator.credentials.create({ publicKey: options });
  const r = credential.response;
  return post(box.dataset.verifyUrl, box.dataset.csrf, {
    id: credential.id,
    rawId: toText(credential.rawId),
    type: credential.type,
    response: {
      clientDataJSON: toText(r.clientDataJSON),
      attestationObject: toText(r.attestationObject),
      transports: r.getTransports ? r.getTransports() : [],
    },
    clientExtensionResults: credential.getClientExtensionResults(),
    authenticatorAttachment: credential.authenticatorAttachment,
  });
}

const actions = { "sign-in": signIn, add: add };

if (window.PublicKeyCredential && navigator.credentials) {
  for (const box of document.querySelectorAll(".app-passkey")) {
    const button = box.querySelector("[data-passkey-action]");
    const action = actions[button.dataset.passkeyAction];
    box.hidden = false;
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const result = await action(box);
        window.location.assign(result.redirect);
      } catch (error) {
        // A cancelled or timed-out prompt is a DOMException; its text is not for people.
        const failed = box.dataset.failed;
        showError(box, error instanceof DOMException ? failed : error.message || failed);
        button.disabled = false;
      }
    });
  }
}
