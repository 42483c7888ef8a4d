// Lets TypeScript accept the CSS import Vite bundles.
/// <reference types="vite/client" />
