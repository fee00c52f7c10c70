// The board page's script (api/routes/vote.py): a voter finds their tracker among the counted
// ones, in the page itself (nothing is sent anywhere).
(() => {
  const find = document.getElementById('find');
  if (!find) return;  // before the close there is no list
  const input = document.getElementById('tracker-q');
  const answer = document.getElementById('find-result');
  const trackers = new Set([...document.querySelectorAll('#trackers code')]
    .map((c) => c.textContent));
  const look = () => {
    const q = input.value.trim();
    answer.textContent = q ? (trackers.has(q) ? find.dataset.found : find.dataset.notFound) : '';
  };
  input.addEventListener('input', look);
  find.addEventListener('submit', (ev) => { ev.preventDefault(); look(); });
})();
