// Import-cycle check (pnpm check-cycles, run by .ci/run). swc parses the TypeScript
// sources as written, so type-only imports count as dependencies too.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Modules must not import each other in a circle, type-only imports included.',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    parser: 'swc',
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(dist|generated)/' },
    // ESM TypeScript imports name the emitted .js file; the source is the .ts beside it.
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
