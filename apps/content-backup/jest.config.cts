module.exports = {
  displayName: 'content-backup',
  preset: '../../jest.preset.js',
  testEnvironment: 'node',
  coverageDirectory: '../../coverage/apps/content-backup',
};
