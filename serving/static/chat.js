// Runs once per page as the chat's js_on_load; `element` is the chat container.
element.addEventListener("click", (event) => {
  const cite = event.target.closest("a.na-cite");
  if (cite) {
    const card = document.getElementById(cite.dataset.card);
    if (!card) return;
    event.preventDefault();
    card.open = true;
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
