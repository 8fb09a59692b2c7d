// Runs once per page as the chat's js_on_load; `element` is the chat container.
element.addEventListener("click", (event) => {
  const cite = event.target.closest("a.na-cite");
  if (cite) {
    const card = document.getElementById(cite.dataset.card);
    if (!card) return;
    event.preventDefault();
    card.open = true;
    showQuote(card);
    card.scrollIntoView({ block: "nearest", behavior: "smooth" });
    card.classList.remove("na-flash");
    void card.offsetWidth; // restart the highlight animation
    card.classList.add("na-flash");
    return;
  }
  const copy = event.target.closest("button.na-copy");
  if (copy) {
    const text = copy.dataset.copy || "";
    const done = () => {
      copy.textContent = "Copied";
      setTimeout(() => (copy.textContent = "Copy answer"), 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, () => fallbackCopy(text, done));
    } else {
      fallbackCopy(text, done);
    }
  }
});

// The passage box scrolls on its own: bring the quote to its middle (its top if it is taller
// than the box), or the reader lands on the card with the quote below the box's fold.
function showQuote(card) {
  const box = card.querySelector(".na-passage");
  // A quote across a paragraph break is one <mark> per paragraph: show them together.
  const marks = box ? [...box.querySelectorAll("mark.na-quote")] : [];
  if (!marks.length) return;
  const rects = marks.map((mark) => mark.getBoundingClientRect());
  const top = Math.min(...rects.map((r) => r.top));
  const height = Math.max(...rects.map((r) => r.bottom)) - top;
  const above = top - box.getBoundingClientRect().top - box.clientTop;
  box.scrollTop += above - Math.max((box.clientHeight - height) / 2, 0);
}

function fallbackCopy(text, done) {
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  try {
    document.execCommand("copy");
    done();
  } finally {
    area.remove();
  }
}
