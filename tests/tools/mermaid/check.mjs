// Parses a Mermaid sequence diagram (the file named on the command line) with
// Mermaid's own parser and prints what Mermaid understood, as JSON:
// {"actors":[[id,label]...],"messages":[[from,to,text,type]...]}.
// Entity codes (#35;) are decoded as a renderer would. A parse error exits 1.
import { readFileSync } from 'node:fs';
import mermaid from 'mermaid';

const src = readFileSync(process.argv[2], 'utf8');
const decode = (s) => (s ?? '').replace(/ﬂ°°(\d+)¶ß/g, (_, n) => String.fromCharCode(Number(n)));
try {
  await mermaid.parse(src);
  const diagram = await mermaid.mermaidAPI.getDiagramFromText(src);
  const db = diagram.db;
  const actors = [...db.getActors().values()].map((a) => [a.name, decode(a.description)]);
  const messages = db.getMessages().map((m) => [m.from ?? null, m.to ?? null, decode(m.message), m.type]);
  console.log(JSON.stringify({ actors, messages }));
} catch (e) {
  console.error(String(e.message ?? e));
  process.exit(1);
}
