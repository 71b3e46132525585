#!/usr/bin/env node
// The compiled CLI lives in dist/ (npm ci builds it).
import { main } from '../dist/lib/cli/index.js';

await main(process.argv.slice(2));
