// docs/api/openapi.json is generated from the zod schemas in shared/api; this keeps it current.
import { readFileSync } from 'node:fs';
import { describe, it, expect } from 'vitest';
import { openApiDocument } from '../../shared/api/openapi.ts';
import { FUNCTION_NAMES } from '../../shared/api/paths.ts';

describe('the OpenAPI document', () => {
  it('is the one the schemas generate (regenerate: npx tsx shared/api/openapi.ts)', () => {
    const committed = JSON.parse(readFileSync(new URL('../../docs/api/openapi.json', import.meta.url), 'utf8'));
    expect(committed).toEqual(JSON.parse(JSON.stringify(openApiDocument())));
  });

  it('describes every function, and every reference in it resolves', () => {
    const document = openApiDocument();
    expect(Object.keys(document.paths).sort()).toEqual(FUNCTION_NAMES.map((name) => `/${name}`).sort());
    const refs = JSON.stringify(document).match(/#\/components\/schemas\/[\w]+/g) ?? [];
    for (const ref of new Set(refs)) expect(document.components.schemas).toHaveProperty(ref.split('/').pop()!);
  });
});
