import { ApiError } from './api.js';
import { h } from './dom.js';
import type { Page } from './types.js';

export interface Column<T> {
  title: string;
  cell(row: T): Node | string;
  /** CSS class of the column's cells. */
  className?: string;
}

export interface TableOptions<T> {
  columns: Column<T>[];
  /** Fetches one page; `filter` is `{[field]: text}` or empty. */
  load(pageNum: number, pageSize: number, filter: Record<string, string>): Promise<Page<T>>;
  /** Fields the search box can filter on (the first is the default). None: no search box. */
  searchFields?: { value: string; label: string }[];
  pageSize?: number;
  /** Shown when the list is empty. */
  empty: string;
  /** A row's stable key (for `data-key`, used by the tests and for styling). Called unbound. */
  key: (row: T) => string;
  /** Shown instead of the table when `load` fails with this status (e.g. 404: "not configured"). */
  unavailable?: { status: number; text: string };
}

/**
 * A paged, searchable table that reloads on `refresh()` (the dashboard's poll) and on every
 * search or page change. A slower, older answer never overwrites a newer one.
 */
export class PagedTable<T> {
  readonly #options: TableOptions<T>;
  readonly #body = h('tbody');
  readonly #info = h('span', { class: 'muted' });
  readonly #note = h('div', { class: 'note', hidden: '' });
  readonly #prev = h('button', { type: 'button', class: 'small' }, '‹ Prev');
  readonly #next = h('button', { type: 'button', class: 'small' }, 'Next ›');
  readonly #table: HTMLElement;
  readonly #pager: HTMLElement;
  readonly #toolbar = h('div', { class: 'toolbar' });
  #field = '';
  #text = '';
  #pageNum = 1;
  #pages = 1;
  #seq = 0;
  #shown = '';
  #debounce: ReturnType<typeof setTimeout> | undefined;

  constructor(root: HTMLElement, options: TableOptions<T>) {
    this.#options = options;
    const fields = options.searchFields ?? [];
    this.#field = fields[0]?.value ?? '';
    if (fields.length > 0) {
      const placeholder = (field: string): string => `Search by ${fields.find((f) => f.value === field)?.label.toLowerCase() ?? field}…`;
      const input = h('input', { type: 'search', placeholder: placeholder(this.#field), 'aria-label': 'Search' });
      input.addEventListener('input', () => this.#search(this.#field, input.value.trim()));
      if (fields.length > 1) {
        const select = h('select', { 'aria-label': 'Search field' }, ...fields.map((f) => h('option', { value: f.value }, f.label)));
        select.addEventListener('change', () => {
          input.placeholder = placeholder(select.value);
          this.#search(select.value, this.#text);
        });
        this.#toolbar.append(select);
      }
      this.#toolbar.append(input);
    }
    this.#prev.addEventListener('click', () => this.#go(this.#pageNum - 1));
    this.#next.addEventListener('click', () => this.#go(this.#pageNum + 1));
    this.#table = h('table', {}, h('thead', {}, h('tr', {}, ...options.columns.map((c) => h('th', {}, c.title)))), this.#body);
    this.#pager = h('div', { class: 'pager' }, this.#prev, this.#info, this.#next);
    root.append(this.#toolbar, this.#note, h('div', { class: 'scroll' }, this.#table), this.#pager);
  }

  /** Reloads the current page. Rejects when the load failed (the table shows why). */
  async refresh(): Promise<void> {
    const seq = ++this.#seq;
    const { pageSize = 20, unavailable } = this.#options;
    const filter: Record<string, string> = this.#text === '' || this.#field === '' ? {} : { [this.#field]: this.#text };
    let page: Page<T>;
    try {
      page = await this.#options.load(this.#pageNum, pageSize, filter);
    } catch (err) {
      if (seq !== this.#seq) return;
      if (unavailable !== undefined && err instanceof ApiError && err.status === unavailable.status) {
        this.showUnavailable();
        return;
      }
      this.#showNote(`Could not load: ${err instanceof Error ? err.message : String(err)}`, false);
      throw err;
    }
    if (seq !== this.#seq) return;
    this.#pages = Math.max(1, Math.ceil(page.total / page.pageSize));
    if (this.#pageNum > this.#pages) {
      // The list shrank under us (a kick, users leaving): show its last page instead.
      this.#pageNum = this.#pages;
      return this.refresh();
    }
    if (page.partial === true) this.#showNote('Some cluster nodes did not answer: the list may be incomplete.', false);
    else this.#note.hidden = true;
    this.#table.hidden = this.#pager.hidden = this.#toolbar.hidden = false;
    this.#render(page);
  }

  #render(page: Page<T>): void {
    const first = page.total === 0 ? 0 : (page.pageNum - 1) * page.pageSize + 1;
    const last = Math.min(page.total, page.pageNum * page.pageSize);
    this.#info.textContent = page.total === 0 ? '' : `${first}–${last} of ${page.total}`;
    this.#prev.disabled = page.pageNum <= 1;
    this.#next.disabled = page.pageNum >= this.#pages;
    // Rebuild rows only when the data changed: a button under the mouse must not be replaced every poll.
    const shown = JSON.stringify(page.list);
    if (shown === this.#shown && this.#body.childElementCount > 0) return;
    this.#shown = shown;
    const { columns, empty, key } = this.#options;
    if (page.list.length === 0) {
      this.#body.replaceChildren(h('tr', { class: 'empty' }, h('td', { colspan: String(columns.length) }, empty)));
      return;
    }
    this.#body.replaceChildren(
      ...page.list.map((row) =>
        h('tr', { 'data-key': key(row) }, ...columns.map((c) => h('td', c.className ? { class: c.className } : {}, c.cell(row)))),
      ),
    );
  }

  /** Shows the `unavailable` text instead of the table (and stops any pending load from showing). */
  showUnavailable(): void {
    this.#seq++;
    this.#showNote(this.#options.unavailable?.text ?? 'Not available.', true);
  }

  #showNote(text: string, replacesTable: boolean): void {
    this.#note.textContent = text;
    this.#note.hidden = false;
    this.#note.classList.toggle('warn', !replacesTable);
    this.#table.hidden = this.#pager.hidden = this.#toolbar.hidden = replacesTable;
  }

  #search(field: string, text: string): void {
    this.#field = field;
    this.#text = text;
    this.#pageNum = 1;
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => void this.refresh().catch(() => undefined), 200);
  }

  #go(pageNum: number): void {
    if (pageNum < 1 || pageNum > this.#pages) return;
    this.#pageNum = pageNum;
    void this.refresh().catch(() => undefined);
  }
}
