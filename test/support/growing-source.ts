// A CSV source for the growing work set's tests (file and PostgreSQL stores): members, duplicates and bad rows.

export const SOURCE_HEADER = 'memberId,mobileNumber,email,unsubscribeEmail,unsubscribeTexting';

/** `rows` rows; every 7th repeats an earlier memberId (a duplicate far back), every 11th is a bad row. */
export function mixedCsv(rows: number): string {
  const lines = [SOURCE_HEADER];
  for (let i = 0; i < rows; i++) {
    if (i % 11 === 10) lines.push(`m${i},not-a-phone,x,maybe,yes`);
    else lines.push(`m${i % 7 === 6 ? i - 5 : i},+8210${String(i).padStart(8, '0')},u${i}@example.com,yes,no`);
  }
  return `${lines.join('\n')}\n`;
}
