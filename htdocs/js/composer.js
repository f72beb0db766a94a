// The message box: Enter sends, Shift+Enter makes a new line, the box grows
// with its text, a byte counter appears near the server's limit, and the
// focus stays in the box after sending.

import { byteLength } from "./names.js";

const MAX_HEIGHT_PX = 200;

export class Composer {
  // onSubmit(text) returns true when the text was used (sent or run).
  constructor({ form, input, label, counter, maxBytes, onSubmit }) {
    this.form = form;
    this.input = input;
    this.label = label;
    this.counter = counter;
    this.maxBytes = maxBytes;
    input.addEventListener("input", () => this._changed());
    input.addEventListener("keydown", (e) => {
      // isComposing / 229: Enter that confirms an IME composition is not "send".
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const text = input.value.replace(/\s+$/u, "").replace(/^\n+/, "");
      if (text.trim() && onSubmit(text)) {
        input.value = "";
        this._changed();
      }
      input.focus({ preventScroll: true });
    });
  }

  // Where the text goes ("Message #lobby"); no target disables the box.
  setTarget(text, enabled) {
    this.label.textContent = text;
    this.input.placeholder = text;
    this.input.disabled = !enabled;
    this._changed();
  }

  // Focus on devices with a mouse; on touch screens this would pop up
  // the keyboard every time the reader switches rooms.
  focus() {
    if (!this.input.disabled && window.matchMedia("(pointer: fine)").matches) {
      this.input.focus({ preventScroll: true });
    }
  }

  _changed() {
    const input = this.input;
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, MAX_HEIGHT_PX)}px`;
    const n = byteLength(input.value);
    this.counter.hidden = n <= this.maxBytes * 0.8;
    this.counter.textContent = `${n.toLocaleString()} / ${this.maxBytes.toLocaleString()} bytes`;
    this.counter.classList.toggle("over", n > this.maxBytes);
  }
}
