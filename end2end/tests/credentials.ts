// The administrator created by first-run.setup.ts.
export const ADMIN = { username: 'admin', password: 'correct horse battery' };
