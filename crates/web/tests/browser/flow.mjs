// A health trainer's whole piece of work on a phone (390×844) in Debian's chromium:
// register a client (a rejected form first), refer and open an episode, a baseline with
// its BMI, a two-goal plan, a session, a draft left and finished after signing out and
// in, an exit assessment, closing the episode. axe-core runs on every page; each page is
// kept as a screenshot. Prints JSON: the steps (page count, fields, violations) and the
// checks made on the way.
//
// node flow.mjs BASE_URL USER PASSWORD SERVICE SCREENSHOT_DIR [WIDTHxHEIGHT]
// (the viewport: a phone's 390x844 unless given)
import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const [base, user, password, service, shots, size = '390x844'] = process.argv.slice(2);
const [width, height] = size.split('x').map(Number);
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
});
const steps = [];
const checks = {};
let shot = 0;
let clientPath = '';
try {
  // The application allows no script; axe is injected past the policy by the test.
  const context = await browser.newContext({ viewport: { width, height }, bypassCSP: true });
  const page = await context.newPage();
  let step = null;
  const begin = (name) => { step = { name, pages: 0, fields: 0, typed: [], violations: [] }; steps.push(step); };
  // A question answered: counted once a step, the three boxes of a date as one.
  const answered = (id) => {
    const name = id.replace(/^#/, '').replace(/-(day|month|year)$/, '');
    if (!step.typed.includes(name)) step.typed.push(name);
  };
  // The questions a page asks: a radio group and a date's three boxes are one question each.
  const questions = (p) => p.evaluate(() => new Set(
    [...document.querySelectorAll('main input:not([type=hidden]), main select, main textarea')]
      .map((e) => e.name.replace(/-(day|month|year)$/, '')),
  ).size);
  // Every page reached: counted, checked with axe, photographed.
  const look = async () => {
    step.pages += 1;
    step.fields += await questions(page);
    await page.evaluate(axeSource);
    const r = await page.evaluate(async () => await window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] },
    }));
    for (const v of r.violations) {
      step.violations.push({ page: page.url().replace(base, ''), id: v.id, help: v.help,
        nodes: v.nodes.map(n => n.target.join(' ')) });
    }
    shot += 1;
    await page.screenshot({ path: `${shots}/${String(shot).padStart(2, '0')}-${step.name}.png`, fullPage: true });
  };
  const go = async (path) => { await page.goto(base + path); await look(); };
  const lookAt = async (p) => {
    step.pages += 1;
    step.fields += await questions(p);
    await p.evaluate(axeSource);
    const r = await p.evaluate(async () => await window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] },
    }));
    for (const v of r.violations) {
      step.violations.push({ page: p.url().replace(base, ''), id: v.id, help: v.help,
        nodes: v.nodes.map(n => n.target.join(' ')) });
    }
    shot += 1;
    await p.screenshot({ path: `${shots}/${String(shot).padStart(2, '0')}-${step.name}.png`, fullPage: true });
  };
  const click = async (name) => {
    await Promise.all([page.waitForLoadState('load'), page.getByRole('link', { name }).first().click()]);
    await look();
  };
  const press = async (name) => {
    await Promise.all([page.waitForNavigation(), page.getByRole('button', { name, exact: true }).click()]);
    await look();
  };
  const signIn = async () => {
    await go('/login');
    await fill('#username', user);
    await fill('#password', password);
    await press('Sign in');
  };
  // A question of a few options is radios, a longer one a select.
  const fill = async (selector, value) => { answered(selector); await page.fill(selector, value); };
  const choose = async (id, value) => {
    answered(id);
    const radio = page.locator(`input[type=radio][name="${id}"][value="${value}"]`);
    if (await radio.count()) await radio.check();
    else await page.selectOption(`#${id}`, value);
  };
  const chosen = async (id) => {
    const radio = page.locator(`input[type=radio][name="${id}"]:checked`);
    if (await radio.count()) return radio.inputValue();
    return page.inputValue(`#${id}`);
  };

  begin('sign-in');
  await signIn();
  await go(`/services/${service}/caseload`);

  begin('register-client');
  await click('Register a client');
  // The first page: consent, who they are and where they live.
  checks.client_first_page = await page.locator('main').innerText();
  await choose('consent_to_record', 'yes');
  await choose('consent_to_share_with_gp', 'yes');
  await fill('#given_name', 'Zoë');
  await fill('#family_name', "O'Neill");
  await fill('#date_of_birth', '31');
  await fill('#date_of_birth-month', '5');
  await fill('#date_of_birth-year', '2099');
  await choose('sex', 'female');
  await fill('#postcode', 'FY1 5DW');
  await press('Check the postcode');
  checks.postcode_confirmation = await page.locator('[role=status]').innerText();
  await press('Continue');
  checks.rejected_form_summary = await page.locator('.error-summary').innerText();
  checks.rejected_form_kept = {
    given_name: await page.inputValue('#given_name'),
    family_name: await page.inputValue('#family_name'),
    sex: await chosen('sex'),
    postcode: await page.inputValue('#postcode'),
  };
  await fill('#date_of_birth-year', '1980');
  await press('Continue');
  // The second page: equality monitoring, GP and work.
  checks.client_second_page = await page.locator('main').innerText();
  await choose('ethnicity', 'A');
  await choose('gp_registered', 'yes');
  await choose('employment', 'employed');
  await choose('disability', 'no');
  await press('Save');
  checks.client_page = await page.locator('h1').innerText();
  clientPath = page.url().replace(base, '');

  begin('referral-and-episode');
  await click('Refer and open an episode');
  await choose('source', 'gp');
  await choose('kind', 'full');
  await choose('primary_issue', 'weight');
  await press('Save');
  const episodeUrl = page.url();

  begin('baseline');
  await click('Baseline assessment');
  await fill('#height_cm', '165');
  await fill('#weight_kg', '82.5');
  await press('Work out BMI');
  checks.bmi_shown = await page.locator('[role=status]').innerText();
  await fill('#fruit_veg_portions_per_day', '2');
  await fill('#active_days_per_week', '1');
  await choose('smoking_status', 'never');
  await fill('#self_efficacy', '5');
  await fill('#swemwbs_raw', '20');
  await press('Save');

  begin('plan-two-goals');
  await click('Agree a plan and goals');
  await choose('goal1_domain', 'physical_activity');
  await fill('#goal1_description', 'Walk to work three days a week');
  await choose('goal2_domain', 'diet');
  await fill('#goal2_description', 'Five portions of fruit and vegetables a day');
  await press('Save');

  begin('plan-copy');
  await click('A copy of the plan to print for the client');
  checks.plan_copy = await page.locator('main').innerText();
  await page.goto(episodeUrl);

  begin('session');
  await click('Log a session');
  await choose('attended', 'yes');
  await choose('purpose', 'support');
  await choose('mode', 'face_to_face');
  await choose('venue', 'community_venue');
  await fill('#duration_min', '45');
  await press('Save');

  begin('draft');
  await click('Signposting or onward referral');
  await choose('action', 'signposted');
  await choose('destination', 'weight_management');
  await press('Save as draft');
  const formToken = await page.locator('input[name=csrf]').first().inputValue();
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Sign out' }).click()]);
  await look();
  await signIn();
  checks.new_session_token_differs = (await page.locator('input[name=csrf]').first().inputValue()) !== formToken;
  await go(`/services/${service}/caseload`);
  checks.draft_named = await page.getByRole('link', { name: 'Signposting or onward referral' }).first().innerText();
  await click('Signposting or onward referral');
  checks.draft_kept = { action: await chosen('action'), destination: await chosen('destination') };
  await choose('outcome', 'unknown');
  await press('Save');

  begin('exit');
  await page.goto(episodeUrl);
  await click('Exit assessment');
  await fill('#weight_kg', '79');
  await fill('#fruit_veg_portions_per_day', '4');
  await fill('#active_days_per_week', '3');
  await choose('smoking_status', 'never');
  await fill('#self_efficacy', '8');
  await fill('#swemwbs_raw', '26');
  await press('Save');

  begin('close');
  await click('Close the episode');
  const goals = page.locator('select[id^=status_]');
  const n = await goals.count();
  for (let i = 0; i < n; i++) {
    await goals.nth(i).selectOption(i === 0 ? 'fully_achieved' : 'partly_achieved');
  }
  checks.goals_asked_at_close = n;
  await choose('exit_reason', 'completed');
  await press('Save');
  checks.closed = await page.locator('.summary-list').innerText();

  // A session entered in error: its change page offers removal, which asks why first.
  begin('entered-in-error');
  const episodePage = page.url();
  await Promise.all([page.waitForLoadState('load'), page.locator('a[href*="/session/"]').first().click()]);
  await look();
  await click('Remove this session: it was entered in error');
  await press('Remove the session');
  checks.removal_asks_why = await page.locator('.error-summary').innerText();
  await go(episodePage.replace(base, ''));
  await context.close();

  // The manager's dashboard counts the episode just closed; a commissioner sees the
  // service's figures controlled and cannot open the client's page.
  const as = async (who, name) => {
    const c = await browser.newContext({ viewport: { width: 1024, height: 1366 }, bypassCSP: true });
    const p = await c.newPage();
    return [c, p];
  };
  {
    const [c, p] = await as('manager');
    begin('manager-dashboard');
    await p.goto(base + '/login');
    await p.fill('#username', 'manager');
    await p.fill('#password', password);
    await Promise.all([p.waitForNavigation(), p.getByRole('button', { name: 'Sign in', exact: true }).click()]);
    await p.goto(`${base}/services/${service}/dashboard`);
    await lookAt(p);
    checks.dashboard_closed = await p.locator('th', { hasText: 'Full episodes closed' }).locator('xpath=..').locator('td').first().innerText();
    // The count links to the records it counted.
    await Promise.all([p.waitForLoadState('load'), p.locator('th', { hasText: 'Full episodes closed' }).locator('xpath=..').locator('td a').first().click()]);
    await lookAt(p);
    checks.dashboard_records = await p.locator('table tbody').innerText();
    await c.close();
  }
  {
    const [c, p] = await as('commissioner');
    begin('commissioner');
    await p.goto(base + '/login');
    await p.fill('#username', 'commissioner');
    await p.fill('#password', password);
    await Promise.all([p.waitForNavigation(), p.getByRole('button', { name: 'Sign in', exact: true }).click()]);
    await p.goto(`${base}/reports`);
    await lookAt(p);
    await Promise.all([p.waitForNavigation(), p.getByRole('button', { name: 'Show the report', exact: true }).click()]);
    await lookAt(p);
    checks.commissioner_policy = (await p.content()).includes('NHS sub-national disclosure control');
    checks.commissioner_stars = await p.locator('td.numeric', { hasText: /^\*$/ }).count();
    const r = await p.goto(base + clientPath);
    checks.commissioner_client_page = r.status();
    await lookAt(p);
    await c.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify({ steps, checks }));
