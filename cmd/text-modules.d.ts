// Completion scripts are imported as text (Bun's `with { type: "text" }`), bundled into the executable.
declare module "*.bash" { const text: string; export default text; }
declare module "*.zsh" { const text: string; export default text; }
declare module "*.fish" { const text: string; export default text; }
