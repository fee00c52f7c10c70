// The ballot page's script (api/routes/vote.py). A file, so the page's CSP needs no
// 'unsafe-inline'. It checks the ballot against the session's rules (handed over in
// data-config, the numbers the tally applies) before anything is sent, posts the credential
// from the URL fragment with the answers, and shows the receipt with a copy button. The
// server's refusals are shown by their rule, in the page's language, never by their text.
(() => {
  const form = document.getElementById('ballot');
  if (!form) return;  // a session not open: the page has no form, only its state
  const cfg = JSON.parse(form.dataset.config);
  const t = cfg.text;
  const out = document.getElementById('result');
  const check = document.getElementById('check');
  const problems = document.getElementById('problems');
  const button = form.querySelector('button[type=submit]');
  const code = new URLSearchParams(location.hash.slice(1)).get('c');
  const fill = (s, vars) => s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? vars[k] : m));
  const sep = document.documentElement.lang.startsWith('zh') ? '、' : ', ';
  const listOf = (names) => (names.length > 5
    ? names.slice(0, 5).join(sep) + ' ' + t.more : names.join(sep));

  if (!code) {
    out.textContent = t.missing;
    out.setAttribute('role', 'alert');
    form.hidden = true;
    return;
  }

  const answers = () => {
    const a = {};
    for (const el of form.querySelectorAll('input[type=radio]:checked')) {
      (a[el.dataset.subject] ??= {})[el.dataset.item] = el.value;
    }
    return a;
  };

  // What keeps this ballot from being valid: the same checks as the tally's ballot_problem.
  const findProblems = (a) => {
    const found = [];
    const missing = [];
    for (const fs of form.querySelectorAll('fieldset')) {
      fs.classList.remove('missing');
      if (!a[fs.dataset.subject] || !a[fs.dataset.subject][fs.dataset.item]) missing.push(fs);
    }
    if (missing.length) {
      const names = missing.map((fs) => cfg.subjects[fs.dataset.subject] + '·'
        + cfg.items[fs.dataset.item]);
      found.push({text: fill(t.unanswered, {n: missing.length, list: listOf(names)}),
        focus: missing[0], missing});
    }
    if (cfg.top) {
      const over = Object.keys(cfg.subjects).filter((s) => a[s]
        && Object.values(a[s]).includes(cfg.top.option));
      if (over.length > cfg.top.limit) {
        found.push({text: fill(t.top, {label: cfg.top.label, limit: cfg.top.limit,
          n: over.length, list: listOf(over.map((s) => cfg.subjects[s]))}),
          focus: form.querySelector(`section[data-subject="${CSS.escape(over[0])}"]`)});
      }
    }
    const chosen = Object.values(a).flatMap((items) => Object.values(items));
    const total = Object.keys(cfg.subjects).length * Object.keys(cfg.items).length;
    if (cfg.identical && !missing.length && chosen.length === total && total > 1
        && new Set(chosen).size === 1) {
      found.push({text: fill(t.identical, {label: cfg.options[chosen[0]]}),
        focus: form.querySelector('fieldset')});
    }
    return {found, done: chosen.length, total};
  };

  const update = () => {
    const {found, done, total} = findProblems(answers());
    const said = t.blocked + found.map((p) => p.text).join(' ');
    if (!problems.hidden) {  // after a refused submit the alert keeps saying what is wrong
      problems.textContent = said;
      problems.hidden = !found.length;
      for (const p of found) for (const fs of p.missing || []) fs.classList.add('missing');
    }
    check.textContent = fill(t.progress, {done, total})
      + (!problems.hidden ? '' : ' ' + (found.length ? said : t.ready));
    return found;
  };
  form.addEventListener('change', update);
  update();

  const refusal = (status, body) => {
    const r = t.refused;
    const rule = body && typeof body.rule === 'string' ? body.rule : null;
    // the rule stays out of the text (an identifier, not a sentence): support reads data-rule
    if (rule) out.dataset.rule = rule; else delete out.dataset.rule;
    return t.error + ((rule && r[rule]) || (status === 429 ? r['429'] : null)
      || (status >= 500 ? r['5xx'] : null) || (status === 400 || status === 415 ? r['400'] : null)
      || r.other);
  };

  const receipt = (body) => {
    out.replaceChildren();
    const p = document.createElement('p'); p.textContent = t.done;
    const tracker = document.createElement('code'); tracker.id = 'tracker';
    tracker.textContent = body.tracker;
    const n = document.createElement('p'); n.id = 'position';
    n.textContent = t.position + ': ' + body.position;
    const copy = document.createElement('button'); copy.type = 'button'; copy.id = 'copy';
    copy.textContent = t.copy;
    const copied = document.createElement('p'); copied.id = 'copied';
    copied.setAttribute('role', 'status');
    const text = fill(t.receipt, {session: cfg.session, tracker: body.tracker,
      position: body.position});
    copy.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(text);
        copied.textContent = t.copied;
      } catch {
        const range = document.createRange(); range.selectNodeContents(tracker);
        const sel = getSelection(); sel.removeAllRanges(); sel.addRange(range);
        copied.textContent = t.copy_failed;
      }
    });
    const c = document.createElement('p'); c.textContent = t.check;
    const board = document.createElement('a'); board.href = cfg.board;
    board.textContent = t.board;
    out.append(p, tracker, n, copy, copied, c, board);
  };

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const found = update();
    if (found.length) {  // never send a ballot the tally would count invalid: say why
      problems.hidden = false;
      update();
      found[0].focus.scrollIntoView({block: 'center'});
      const first = found[0].focus.querySelector('input');
      if (first) first.focus({preventScroll: true});
      return;
    }
    problems.hidden = true;
    button.disabled = true;
    out.textContent = t.sending;
    let resp; let body = null;
    try {
      resp = await fetch(form.action, {method: 'POST',
        headers: {'content-type': 'application/json'},
        body: JSON.stringify({credential: code, answers: answers()})});
      body = await resp.json().catch(() => null);
    } catch {  // network failure: let the voter retry
      button.disabled = false;
      out.textContent = t.error + t.refused.network;
      return;
    }
    if (resp.ok && body) {
      form.hidden = true;
      receipt(body);
    } else {
      button.disabled = false;
      out.textContent = refusal(resp.status, body);
      out.setAttribute('role', 'alert');
    }
  });
})();
