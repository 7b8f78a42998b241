// Opens pages of the running application in Debian's chromium, signed in as each user
// of a plan, on a phone (390×844) and a laptop (1280×800): runs axe-core (WCAG 2.0, 2.1
// and 2.2, levels A and AA) on each, checks that the page does not scroll sideways,
// keeps a screenshot of each (`NAME.png`, `NAME-laptop.png`), and prints the violations
// as JSON.
//
// node a11y.mjs BASE_URL PLAN_JSON SCREENSHOT_DIR
// PLAN_JSON: [{"user": "...", "password": "...", "pages": ["/path", ...]}, ...]
import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const [base, planText, shots] = process.argv.slice(2);
const plan = JSON.parse(planText);
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
});
const results = [];
try {
  for (const step of plan) {
    // The application allows no script; axe is injected past the policy by the test.
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, bypassCSP: true });
    const page = await context.newPage();
    // Each page on a phone and again on a laptop: checked and photographed on both.
    const check = async (path, name) => {
      for (const [size, suffix] of [[{ width: 390, height: 844 }, ''], [{ width: 1280, height: 800 }, '-laptop']]) {
        await page.setViewportSize(size);
        await page.goto(base + path);
        await page.evaluate(axeSource);
        const r = await page.evaluate(async () => await window.axe.run(document, {
          runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] },
        }));
        await page.screenshot({ path: `${shots}/${name}${suffix}.png`, fullPage: true });
        const violations = r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,
          nodes: v.nodes.map(n => n.target.join(' ')) }));
        // Reflow (WCAG 1.4.10): on a phone the page itself never scrolls sideways; a wide
        // table scrolls inside its own box.
        const width = await page.evaluate(() => document.documentElement.scrollWidth);
        if (width > size.width) {
          violations.push({ id: 'reflow', impact: 'serious', nodes: [],
            help: `the page is ${width} pixels wide in a window ${size.width} pixels wide` });
        }
        results.push({ user: step.user, path, viewport: size.width, status: 'checked', violations });
      }
      await page.setViewportSize({ width: 390, height: 844 });
    };
    await check('/login', `${step.user}-login`);
    await page.fill('#username', step.user);
    await page.fill('#password', step.password);
    await page.click('button[type=submit]');
    for (const [i, path] of step.pages.entries()) {
      await check(path, `${step.user}-${i}`);
    }
    await context.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(results));
