// The JavaScript oracle for tests/filters/test_js_oracle.py: reads [[source, flags, [texts…]], …]
// on stdin and prints, per case, "error" (new RegExp throws) or the list of regexp.test(text).
let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const cases = JSON.parse(input);
  const out = cases.map(([source, flags, texts]) => {
    let regexp;
    try {
      regexp = new RegExp(source, flags);
    } catch (error) {
      return "error";
    }
    return texts.map((text) => regexp.test(text));
  });
  process.stdout.write(JSON.stringify(out));
});
