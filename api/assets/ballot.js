// The ballot page's script (api/routes/vote.py): posts the credential from the URL fragment
// with the answers, and shows the tracker. A file, so the page's CSP needs no 'unsafe-inline'.
const form = document.getElementById('ballot');
const out = document.getElementById('result');
const code = new URLSearchParams(location.hash.slice(1)).get('c');
if (!code) { out.textContent = form.dataset.missing; form.hidden = true; }
form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const answers = {};
  for (const el of form.querySelectorAll('input[type=radio]:checked')) {
    (answers[el.dataset.subject] ??= {})[el.dataset.item] = el.value;
  }
  const button = form.querySelector('button');
  button.disabled = true;
  let resp, body;
  try {
    resp = await fetch(form.action, {method: 'POST',
      headers: {'content-type': 'application/json'},
      body: JSON.stringify({credential: code, answers})});
    body = await resp.json();
  } catch (err) {  // network failure or a non-JSON answer: let the voter retry
    button.disabled = false;
    out.textContent = form.dataset.error + (resp ? resp.status : err.message);
    return;
  }
  if (resp.ok) {
    form.hidden = true;
    out.innerHTML = '';
    const p = document.createElement('p'); p.textContent = form.dataset.done;
    const t = document.createElement('code'); t.id = 'tracker'; t.textContent = body.tracker;
    const n = document.createElement('p');
    n.textContent = form.dataset.position + ': ' + body.position;
    n.id = 'position';
    const c = document.createElement('p'); c.textContent = form.dataset.check;
    out.append(p, t, n, c);
  } else {
    button.disabled = false;
    out.textContent = form.dataset.error + (body.detail || resp.status);
  }
});
